package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"consult/bench/internal/results"
)

// machine is what a section says about where its figures come from.
type machine struct {
	results.Machine
	Redis string
}

func readMachine(redisServer string) machine {
	return machine{Machine: results.ReadMachine(), Redis: results.Version(redisServer, "--version")}
}

func (m machine) markdown() string {
	return fmt.Sprintf("%s; %s; harness %s", m.Summary(), m.Redis, m.Go)
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtMiB(kb int64) string {
	if kb <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}

// failBanner prints the failures loudly on stderr.
func failBanner(what string, fails []string) {
	fmt.Fprintln(os.Stderr, "\n"+strings.Repeat("!", 72))
	fmt.Fprintln(os.Stderr, what)
	for _, s := range fails {
		fmt.Fprintln(os.Stderr, "  - "+s)
	}
	fmt.Fprintln(os.Stderr, strings.Repeat("!", 72))
}
