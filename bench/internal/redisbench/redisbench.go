// Package redisbench owns the benchmarks' runs of redis-benchmark: XADDs of a
// comment's bytes straight to Redis, no HTTP, the ceiling over every intake
// figure, and the reading of its CSV report.
package redisbench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is what redis-benchmark reports for a run. P50 and P99 are zero when
// this redis-benchmark does not print them (version 6).
type Result struct {
	RPS      float64
	P50, P99 time.Duration
}

// XADD is a run of `redis-benchmark -c Conns -P 1 --csv XADD Stream '*' f Value`.
type XADD struct {
	Bin    string // redis-benchmark
	Addr   string // host:port of the redis-server
	Conns  int
	Stream string
	Value  []byte // the same JSON body the HTTP cases send
	// Timeout bounds one run (0: 5 minutes): redis-benchmark has no duration
	// option, and spins forever on a server that went away.
	Timeout time.Duration
}

// Run sends n XADDs (no pipelining) and reads the report. It also returns what
// redis-benchmark printed, to keep.
func (x XADD) Run(ctx context.Context, n int) (Result, string, error) {
	host, port, err := net.SplitHostPort(x.Addr)
	if err != nil {
		return Result{}, "", err
	}
	timeout := x.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.Bin, "-h", host, "-p", port, "-c", strconv.Itoa(x.Conns),
		"-n", strconv.Itoa(n), "-P", "1", "--csv", "XADD", x.Stream, "*", "f", string(x.Value))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{}, out.String(), fmt.Errorf("redis-benchmark did not finish within %s", timeout)
		}
		return Result{}, out.String(), fmt.Errorf("redis-benchmark: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	r, err := ParseCSV(out.String())
	return r, out.String() + errOut.String(), err
}

// ParseCSV reads redis-benchmark 7's --csv report: a header row
// ("test","rps","avg_latency_ms",…,"p50_latency_ms",…,"p99_latency_ms",…) and one
// row for the command. The row can't go through a CSV reader: redis-benchmark
// prints the command as the first field without escaping its quotes, and ours
// sends a JSON value. The numbers are the last fields, so they are read from the
// right. Version 6 prints only test and rps: then P50 and P99 stay zero.
func ParseCSV(out string) (Result, error) {
	var r Result
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
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return r, fmt.Errorf("redis-benchmark printed no result row: %q", first)
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
