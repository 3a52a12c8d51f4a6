package main

import (
	"os"
	"strconv"
	"strings"
)

// procStatus is a few lines of /proc/<pid>/status.
type procStatus struct {
	RSSKB, HWMKB int64 // resident set now, and its peak since the process started
	Threads      int64
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(string(b)), nil
}

func parseProcStatus(s string) procStatus {
	var p procStatus
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			p.RSSKB = n
		case "VmHWM":
			p.HWMKB = n
		case "Threads":
			p.Threads = n
		}
	}
	return p
}
