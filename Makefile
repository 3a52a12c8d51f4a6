# consult: make run starts the service on its embedded Redis; make test runs every test.
SHELL := /bin/bash
GO ?= go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_RUN  := redis-server
APT_TEST := redis-server chromium fonts-wqy-microhei
APT_BENCH := redis-server wrk

.PHONY: run test deps deps-test deps-bench build bench fuzz vet

# apt-install installs the Debian packages in $(1) that are missing (as root, or
# with sudo). Recommended packages come too: that is how the tests were run
# (chromium's recommends among them).
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
endef

# deps installs what `make run` needs; deps-test and deps-bench what the tests and
# the benchmark need.
deps:
	$(call apt-install,$(APT_RUN))

deps-test:
	$(call apt-install,$(APT_TEST))

deps-bench:
	$(call apt-install,$(APT_BENCH))

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

# bench-flash offers a flash crowd (ten times what the intake sustains, open loop,
# 640 connections) with limits off and then on; bench-scale measures 1-3 consultd
# replicas on one redis-server and on a three-master Cluster. Each writes its own
# section of bench/RESULTS.md (bench/flash/README.md). About 4 and 2 minutes.
.PHONY: bench-flash bench-scale
bench-flash: deps build
	$(GO) run ./bench/flash crowd

bench-scale: deps build
	$(GO) run ./bench/flash scale
