package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"consult/bench/internal/redisbench"
)

// result is one run of one case: what the load generator measured.
type result struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64 // completed requests
	Non2xx   int64 // wrk: responses that were not 2xx or 3xx
	Errors   socketErrors
	// Problem, when not empty, says why this run does not count as a clean one
	// (non-2xx responses, socket errors, a cross-check with the server that failed).
	Problem string
}

// socketErrors is wrk's "Socket errors" line; absent means all zero.
type socketErrors struct {
	Connect, Read, Write, Timeout int64
}

func (s socketErrors) total() int64 { return s.Connect + s.Read + s.Write + s.Timeout }

func (s socketErrors) String() string {
	return fmt.Sprintf("connect %d, read %d, write %d, timeout %d", s.Connect, s.Read, s.Write, s.Timeout)
}

// wrkConfig is how every HTTP case is loaded: the same generator, script and body.
type wrkConfig struct {
	Bin         string // wrk binary
	Script      string // bench/wrk/post.lua
	BodyFile    string // the JSON comment, read by the script
	Threads     int
	Connections int
}

// runWrk loads url for d and parses what wrk prints.
func runWrk(ctx context.Context, w wrkConfig, url string, d time.Duration) (result, string, error) {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.Bin,
		"-t"+strconv.Itoa(w.Threads), "-c"+strconv.Itoa(w.Connections), "-d"+strconv.Itoa(secs)+"s",
		"--latency", "-s", w.Script, url)
	cmd.Env = append(os.Environ(), "BENCH_BODY_FILE="+w.BodyFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
			return result{}, out.String(), fmt.Errorf("wrk did not finish within %s", d+30*time.Second)
		}
		return result{}, out.String(), fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(out.String()))
	}
	r, err := parseWrk(out.String())
	return r, out.String(), err
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkPct      = regexp.MustCompile(`(?m)^\s*(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr  = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk 4's report (run with --latency): Requests/sec, the 50% and
// 99% lines of the latency distribution, the request count, "Non-2xx or 3xx
// responses" and "Socket errors" (both printed only when not zero).
func parseWrk(out string) (result, error) {
	var r result
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output has no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkRequests.FindStringSubmatch(out); m == nil {
		return r, errors.New(`wrk output has no "N requests in" line`)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := wrkDuration(p[2], p[3])
		if err != nil {
			return r, err
		}
		if p[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		if r.Requests == 0 {
			return r, errors.New("wrk completed no request")
		}
		return r, errors.New("wrk output has no 50% and 99% latency lines (was --latency given?)")
	}
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = wrkSockErr.FindStringSubmatch(out); m != nil {
		n := make([]int64, 4)
		for i := range n {
			n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		r.Errors = socketErrors{Connect: n[0], Read: n[1], Write: n[2], Timeout: n[3]}
	}
	return r, nil
}

// wrkDuration turns wrk's "1.23ms" into a duration; wrk prints us, ms and s for
// latencies, m and h only for absurd ones.
func wrkDuration(num, unit string) (time.Duration, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk latency %q: %w", num+unit, err)
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[unit]
	return time.Duration(math.Round(v * scale)), nil
}

// runRedisBenchmark runs n XADDs of the redis XADD case and reads redis-benchmark's report.
func runRedisBenchmark(ctx context.Context, x redisbench.XADD, n int) (result, string, error) {
	rb, out, err := x.Run(ctx, n)
	if err != nil {
		return result{}, out, err
	}
	return result{RPS: rb.RPS, P50: rb.P50, P99: rb.P99, Requests: int64(n)}, out, nil
}
