package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine is what RESULTS.md says about where the figures come from.
type machine struct {
	CPU        string
	CPUs       int
	Memory     string
	Kernel     string
	OS         string
	GoHarness  string // the toolchain that built this harness
	GoConsultd string // the toolchain that built bin/consultd
	Redis      string
	RedisBench string
	Wrk        string
	LoadAvg    string
	Date       time.Time
}

func readMachine(consultd, redisServer, redisBenchmark, wrk string) machine {
	m := machine{Date: time.Now().UTC(), GoHarness: runtime.Version(), CPU: "unknown", Memory: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case !ok:
			case k == "processor":
				m.CPUs++
			case k == "model name" && m.CPU == "unknown":
				m.CPU = v
			}
		}
		f.Close()
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
						m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
					}
				}
			}
		}
	}
	m.Kernel = firstLine(readFile("/proc/sys/kernel/osrelease"))
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.LoadAvg = loadAvg()
	if bi, err := buildinfo.ReadFile(consultd); err == nil {
		m.GoConsultd = bi.GoVersion
	} else {
		m.GoConsultd = "unknown (" + err.Error() + ")"
	}
	m.Redis = commandLine(redisServer, "--version")
	m.RedisBench = commandLine(redisBenchmark, "--version")
	m.Wrk = commandLine(wrk, "-v") // wrk -v prints its version first and exits 1
	return m
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// commandLine is the first line a command prints, whatever its exit status.
func commandLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	if l := firstLine(string(out)); l != "" {
		return l
	}
	return "unknown"
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// loadAvg1 is the one-minute load average, to tell whether the machine was quiet.
func loadAvg1() float64 {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
