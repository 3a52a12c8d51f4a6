package main

import (
	"debug/buildinfo"
	"strings"

	"consult/bench/internal/results"
)

// machine is what the intake section says about where the figures come from:
// the machine, and the version of every program that ran.
type machine struct {
	results.Machine
	GoConsultd string // the toolchain that built bin/consultd
	Redis      string
	RedisBench string
	Wrk        string
}

func readMachine(consultd, redisServer, redisBenchmark, wrk string) machine {
	m := machine{Machine: results.ReadMachine()}
	if bi, err := buildinfo.ReadFile(consultd); err == nil {
		m.GoConsultd = bi.GoVersion
	} else {
		m.GoConsultd = "unknown (" + err.Error() + ")"
	}
	m.Redis = results.Version(redisServer, "--version")
	m.RedisBench = results.Version(redisBenchmark, "--version")
	m.Wrk = results.Version(wrk, "-v")
	return m
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}
