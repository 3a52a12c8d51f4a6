package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// replaceSection returns doc with the section named name replaced by body: the
// lines "<!-- name:begin -->" and "<!-- name:end -->" and what is between them.
// A doc without the section gets it appended at its end; the rest of doc is never
// changed. A doc with one marker and not the other, or the end before the begin,
// or either twice, is an error: guessing there could eat someone else's text.
func replaceSection(doc, name, body string) (string, error) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	section := begin + "\n" + strings.Trim(body, "\n") + "\n" + end + "\n"
	lines := strings.SplitAfter(doc, "\n")
	bi, ei := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case begin:
			if bi >= 0 {
				return "", fmt.Errorf("%s appears twice", begin)
			}
			bi = i
		case end:
			if ei >= 0 {
				return "", fmt.Errorf("%s appears twice", end)
			}
			ei = i
		}
	}
	switch {
	case bi < 0 && ei < 0:
		if doc == "" {
			return section, nil
		}
		sep := "\n"
		if !strings.HasSuffix(doc, "\n") {
			sep = "\n\n"
		} else if strings.HasSuffix(doc, "\n\n") {
			sep = ""
		}
		return doc + sep + section, nil
	case bi < 0 || ei < 0:
		return "", fmt.Errorf("only one of %s and %s is there", begin, end)
	case ei < bi:
		return "", fmt.Errorf("%s comes before %s", end, begin)
	}
	after := strings.Join(lines[ei+1:], "")
	if !strings.HasSuffix(lines[ei], "\n") {
		// The end marker was the file's last line, without a newline: keep it so.
		section = strings.TrimSuffix(section, "\n")
	}
	return strings.Join(lines[:bi], "") + section + after, nil
}

// writeSection replaces (or appends) the section in the file at path, creating
// the file when it does not exist.
func writeSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := replaceSection(string(old), name, body)
	if err != nil {
		return fmt.Errorf("%s: %w; the file is left as it was", path, err)
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// machine is what a section says about where its figures come from.
type machine struct {
	CPU     string
	CPUs    int
	Memory  string
	Kernel  string
	OS      string
	Go      string
	Redis   string
	LoadAvg string
}

func readMachine(redisServer string) machine {
	m := machine{CPU: "unknown", Memory: "unknown", Go: runtime.Version(), OS: "unknown"}
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
	m.Kernel = strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	for _, line := range strings.Split(readFile("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			m.OS = strings.Trim(v, `"`)
		}
	}
	m.Redis = commandLine(redisServer, "--version")
	m.LoadAvg = loadAvg()
	return m
}

func (m machine) markdown() string {
	return fmt.Sprintf("%s, %d logical CPUs, %s memory; Linux %s (%s); %s; harness %s",
		m.CPU, m.CPUs, m.Memory, m.Kernel, m.OS, m.Redis, m.Go)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func loadAvg1() float64 {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
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
