package results

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what a section says about the computer its figures come from.
// Each program adds the versions of the servers and load generators it ran.
type Machine struct {
	CPU     string
	CPUs    int // logical CPUs
	Memory  string
	Kernel  string
	OS      string
	Go      string // the toolchain that built the harness
	LoadAvg string // 1, 5 and 15 minutes, when the machine was read
}

// ReadMachine describes this machine from /proc and /etc/os-release; what it
// can't read is "unknown".
func ReadMachine() Machine {
	m := Machine{CPU: "unknown", Memory: "unknown", OS: "unknown", Go: runtime.Version()}
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
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	m.Kernel = firstLine(readFile("/proc/sys/kernel/osrelease"))
	for _, line := range strings.Split(readFile("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			m.OS = strings.Trim(v, `"`)
		}
	}
	m.LoadAvg = LoadAvg()
	return m
}

// Summary is the machine on one line: CPU, memory, kernel and OS.
func (m Machine) Summary() string {
	return fmt.Sprintf("%s, %d logical CPUs, %s memory; Linux %s (%s)", m.CPU, m.CPUs, m.Memory, m.Kernel, m.OS)
}

// Version is the first line a command prints, whatever its exit status (wrk -v
// prints its version and exits 1), or "unknown".
func Version(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	if l := firstLine(string(out)); l != "" {
		return l
	}
	return "unknown"
}

// LoadAvg is the 1, 5 and 15 minute load averages.
func LoadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// LoadAvg1 is the one-minute load average, to tell whether the machine was quiet
// before a run; 0 when unknown.
func LoadAvg1() float64 {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
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
