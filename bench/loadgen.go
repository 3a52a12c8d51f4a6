package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// redisBenchConfig is how the Redis-only case is loaded.
type redisBenchConfig struct {
	Bin         string
	Addr        string // host:port of the bench's redis-server
	Connections int
	Stream      string
	Value       []byte // the same JSON body the HTTP cases send
}

// runRedisBenchmark runs n XADDs on c connections (no pipelining) and parses the
// CSV report of redis-benchmark 7.
func runRedisBenchmark(ctx context.Context, b redisBenchConfig, n int) (result, string, error) {
	host, port, err := splitAddr(b.Addr)
	if err != nil {
		return result{}, "", err
	}
	// redis-benchmark has no duration option; n is chosen from the previous run's
	// rate. The timeout is generous but bounded: redis-benchmark spins forever on a
	// server that went away.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Bin, "-h", host, "-p", strconv.Itoa(port), "-c", strconv.Itoa(b.Connections),
		"-n", strconv.Itoa(n), "-P", "1", "--csv", "XADD", b.Stream, "*", "f", string(b.Value))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return result{}, out.String(), errors.New("redis-benchmark did not finish within 5 minutes")
		}
		return result{}, out.String(), fmt.Errorf("redis-benchmark: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	r, err := parseRedisBenchmarkCSV(out.String())
	if err == nil {
		r.Requests = int64(n)
	}
	return r, out.String() + errOut.String(), err
}

// parseRedisBenchmarkCSV reads redis-benchmark 7's --csv report: a header row
// ("test","rps","avg_latency_ms",…,"p50_latency_ms",…,"p99_latency_ms",…) and one
// row for the command. The row can't go through a CSV reader: redis-benchmark
// prints the command as the first field without escaping its quotes, and ours
// sends a JSON value. The numbers are the last fields, so they are read from the
// right. Older versions print only test and rps: then p50 and p99 stay zero and
// are shown as unknown.
func parseRedisBenchmarkCSV(out string) (result, error) {
	var r result
	var header, data []string
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r", "\n"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, `"test",`):
			header, _ = csv.NewReader(strings.NewReader(line)).Read()
		case strings.HasPrefix(line, `"`) && strings.HasSuffix(line, `"`) && data == nil:
			data = strings.Split(line, ",")
		}
	}
	if data == nil {
		return r, fmt.Errorf("redis-benchmark printed no result row: %q", firstLine(out))
	}
	if header == nil {
		header = []string{"test", "rps"} // redis-benchmark 6
	}
	numbers := len(header) - 1
	if len(data) < numbers+1 {
		return r, fmt.Errorf("redis-benchmark CSV: %d fields for the %d columns %q", len(data), len(header), header)
	}
	data = data[len(data)-numbers:]
	field := func(name string) (float64, bool, error) {
		i := slices.Index(header, name) - 1
		if i < 0 {
			return 0, false, nil
		}
		v, err := strconv.ParseFloat(strings.Trim(data[i], `"`), 64)
		if err != nil {
			return 0, false, fmt.Errorf("redis-benchmark CSV %s %s: %w", name, data[i], err)
		}
		return v, true, nil
	}
	var ok bool
	var err error
	if r.RPS, ok, err = field("rps"); err != nil || !ok {
		return r, errors.Join(errors.New("redis-benchmark CSV has no rps"), err)
	}
	for name, dst := range map[string]*time.Duration{"p50_latency_ms": &r.P50, "p99_latency_ms": &r.P99} {
		ms, _, err := field(name)
		if err != nil {
			return r, err
		}
		*dst = time.Duration(math.Round(ms*1000)) * time.Microsecond
	}
	return r, nil
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return h, n, nil
}
