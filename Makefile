# consult: make run starts the service on its embedded Redis; make test runs every test.
SHELL := /bin/bash
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_RUN  := redis-server
APT_TEST := redis-server chromium fonts-wqy-microhei
APT_BENCH := redis-server wrk

.PHONY: run test deps deps-test deps-bench build bench fuzz vet

# deps installs what `make run` needs (Debian, as root or with sudo).
deps:
	@missing=""; for p in $(APT_RUN); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

deps-test:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

deps-bench:
	@missing=""; for p in $(APT_BENCH); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

build:
	$(GO) build -o bin/consultd ./cmd/consultd

run: deps
	$(GO) run ./cmd/consultd

test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# fuzz runs the draft-text parser's fuzz test for a while (not part of make test).
fuzz:
	$(GO) test ./drafts/ -run '^$$' -fuzz FuzzParseSections -fuzztime 60s

bench: deps-bench build
	$(GO) run ./bench -profile
