package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// The floors, for appendfsync always.
const (
	floorVsBare = 0.15                  // intake req/s ≥ 15% of the bare echo handler's (issue 3)
	floorVsXadd = 0.95                  // intake req/s ≥ 95% of the decode+XADD handler's (issue 6)
	floorP99    = 20 * time.Millisecond // intake p99 below this (issue 6)
)

// report is a whole run of the harness.
type report struct {
	Opts       options
	Machine    machine
	Tools      tools
	Start, End time.Time
	LoadAfter  string
	Modes      []modeResult
}

// summary is the medians of one case's measured runs in one mode.
type summary struct {
	N        int
	RPS      float64
	P50, P99 time.Duration
	Problems int
}

func summarize(rs []result) summary {
	s := summary{N: len(rs)}
	if len(rs) == 0 {
		return s
	}
	var rps []float64
	var p50, p99 []time.Duration
	for _, r := range rs {
		rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50), append(p99, r.P99)
		if r.Problem != "" {
			s.Problems++
		}
	}
	s.RPS, s.P50, s.P99 = median(rps), median(p50), median(p99)
	return s
}

// median of an odd count is the middle value; of an even count, the mean of the two middle ones.
func median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// floor is one of the floors, checked.
type floor struct {
	Name, Measured string
	Pass           bool
}

func floors(m modeResult) []floor {
	in, x, b := summarize(m.byCase(caseIntake)), summarize(m.byCase(caseXadd)), summarize(m.byCase(caseBare))
	rb, rx := ratio(in.RPS, b.RPS), ratio(in.RPS, x.RPS)
	return []floor{
		{fmt.Sprintf("intake ≥ %.0f%% of the bare echo handler's req/s", floorVsBare*100), fmt.Sprintf("%.1f%%", rb*100), in.N > 0 && rb >= floorVsBare},
		{fmt.Sprintf("intake ≥ %.0f%% of the decode+XADD handler's req/s", floorVsXadd*100), fmt.Sprintf("%.1f%%", rx*100), in.N > 0 && rx >= floorVsXadd},
		{fmt.Sprintf("intake p99 < %s", fmtDur(floorP99)), fmtDur(in.P99), in.N > 0 && in.P99 > 0 && in.P99 < floorP99},
	}
}

// failures are what makes the run not a clean measurement: a mode that stopped,
// and every measured run with a problem (non-2xx responses, socket errors, a
// server's count that does not match).
func (r report) failures() []string {
	var f []string
	for _, m := range r.Modes {
		if m.Err != nil {
			f = append(f, fmt.Sprintf("appendfsync %s stopped early: %s", m.Mode, firstLine(m.Err.Error())))
		}
		for _, run := range m.Runs {
			if run.Problem != "" {
				who := run.Case
				if who == caseIntake {
					who = "INTAKE"
				}
				f = append(f, fmt.Sprintf("appendfsync %s, round %d, %s: %s", m.Mode, run.Round, who, run.Problem))
			}
		}
	}
	return f
}

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// table is the short summary printed at the end.
func (r report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %-11s %10s %9s %9s  %s\n", "fsync", "case", "req/s", "p50", "p99", "runs")
	for _, m := range r.Modes {
		for _, c := range caseOrder {
			s := summarize(m.byCase(c))
			note := fmt.Sprint(s.N)
			if s.Problems > 0 {
				note += fmt.Sprintf(" (%d FAILED)", s.Problems)
			}
			fmt.Fprintf(&b, "%-9s %-11s %10.0f %9s %9s  %s\n", m.Mode, c, s.RPS, fmtDur(s.P50), fmtDur(s.P99), note)
		}
		in, x, bare := summarize(m.byCase(caseIntake)), summarize(m.byCase(caseXadd)), summarize(m.byCase(caseBare))
		fmt.Fprintf(&b, "%-9s ratios: intake/bare %.3f, intake/echo+XADD %.3f, echo+XADD/bare %.3f\n",
			m.Mode, ratio(in.RPS, bare.RPS), ratio(in.RPS, x.RPS), ratio(x.RPS, bare.RPS))
		if m.Mode == "always" {
			for _, f := range floors(m) {
				fmt.Fprintf(&b, "%-9s floor: %-50s %-8s %s\n", m.Mode, f.Name, f.Measured, pass(f.Pass))
			}
		}
		if m.Err != nil {
			fmt.Fprintf(&b, "%-9s STOPPED EARLY: %s\n", m.Mode, firstLine(m.Err.Error()))
		}
	}
	return b.String()
}

// command is how this run was started, to be repeated.
func (r report) command() string {
	var args []string
	for _, a := range r.Opts.Args {
		args = append(args, shellQuote(a))
	}
	cmd := strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
	if os.Getenv("MAKELEVEL") != "" && len(args) == 0 {
		return "make bench   (which runs `" + cmd + "` after `make build`)"
	}
	return cmd
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// markdown is the intake section of RESULTS.md, without its marker lines.
func (r report) markdown() string {
	o, mc := r.Opts, r.Machine
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## Intake: consultd beside three baselines\n\n")
	p("Written by `make bench` (bench/*.go); regenerate it rather than editing it.\n\n")
	if f := r.failures(); len(f) > 0 {
		p("> **RUN FAILED: these figures are not a clean measurement.**\n>\n")
		for _, s := range f {
			p("> - %s\n", mdEscape(s))
		}
		p("\n")
	}
	if o.Quick || o.Dur < 10*time.Second || o.Reps < 5 {
		p("> **A short run** (%s per run, %d round(s)): a check of the harness, not figures to quote. "+
			"Run `make bench` on a quiet machine for those.\n\n", o.Dur, o.Reps)
	}
	p("- Command: `%s`\n", r.command())
	p("- Date: %s to %s (UTC), %s in all\n", r.Start.UTC().Format("2006-01-02 15:04:05"), r.End.UTC().Format("15:04:05"), r.End.Sub(r.Start).Round(time.Second))
	p("- Load average (1, 5, 15 min) before: %s; after: %s\n\n", mc.LoadAvg, r.LoadAfter)

	p("### Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s, %d logical CPUs |\n| memory | %s |\n| kernel | Linux %s (%s) |\n", mc.CPU, mc.CPUs, mc.Memory, mc.Kernel, mc.OS)
	p("| Go | consultd built with %s; harness %s |\n| redis-server | %s |\n| redis-benchmark | %s |\n| wrk | %s |\n\n",
		mc.GoConsultd, mc.Go, mc.Redis, mc.RedisBench, mc.Wrk)

	body, runes := 0, 0
	if len(r.Modes) > 0 {
		body, runes = r.Modes[0].BodyBytes, r.Modes[0].BodyRunes
	}
	p("### What was measured\n\n")
	p("Every HTTP case gets the same request from `wrk -t%d -c%d -d%ds --latency -s bench/wrk/post.lua` on loopback: "+
		"`POST /api/v1/drafts/%s/comments`, `Content-Type: application/json`, a %d-byte JSON comment "+
		"(`section`, `body` of %d Chinese characters, `name`, `contact`, `category`, `publish_name`).\n\n",
		o.Threads, o.Conns, int(o.Dur/time.Second), draftID, body, runes)
	p("| case | what answers |\n|---|---|\n")
	p("| %s | `bin/consultd`, the real binary (REDIS_URL to the bench's Redis, CONSULT_DEMO=false, CONSULT_REDIS_POOL=%d, its 2 comment workers running); the draft is created through the admin API first. Success is 202 with a receipt. |\n", caseIntake, o.Pool)
	p("| %s | an echo v4 handler on the same route, no middleware, that decodes the same JSON and does one XADD (go-redis v9, pool %d) to the same Redis; 202 |\n", caseXadd, o.Pool)
	p("| %s | an echo v4 handler on the same route, no middleware, that answers 202 |\n", caseBare)
	p("| %s | `redis-benchmark -c %d -P 1 --csv XADD %s '*' f <the same %d bytes>` against the same Redis, no HTTP; the request count is chosen from the previous run's rate to last about as long as a wrk run |\n\n", caseRedis, o.Conns, benchStream, body)
	p("Each appendfsync mode runs on a fresh redis-server in a temporary directory with the arguments of "+
		"consultd's embedded default (`internal/redisproc`: appendonly yes, the mode's appendfsync, AOF rewrites past 512 MB, no RDB snapshots). "+
		"In each mode every case has a %s warm-up, then %d round(s) in which every case runs once for %s; each round starts "+
		"one case later than the one before. The baselines' streams, and the intake draft's comments, are emptied after each run. "+
		"The figures are the medians over the rounds of each run's req/s, p50 and p99.\n\n", o.Warmup, o.Reps, o.Dur)

	for _, m := range r.Modes {
		p("### appendfsync %s\n\n", m.Mode)
		if m.Err != nil {
			p("> **Stopped early:** %s\n\n", mdEscape(firstLine(m.Err.Error())))
		}
		p("| case | req/s | p50 | p99 | runs (req/s) |\n|---|---:|---:|---:|---|\n")
		for _, c := range caseOrder {
			s := summarize(m.byCase(c))
			var each []string
			for _, x := range m.byCase(c) {
				v := fmt.Sprintf("%.0f", x.RPS)
				if x.Problem != "" {
					v += " (FAILED)"
				}
				each = append(each, v)
			}
			p("| %s | %.0f | %s | %s | %s |\n", c, s.RPS, fmtDur(s.P50), fmtDur(s.P99), strings.Join(each, ", "))
		}
		in, x, bare := summarize(m.byCase(caseIntake)), summarize(m.byCase(caseXadd)), summarize(m.byCase(caseBare))
		p("\nRatios of median req/s: intake / bare echo **%.3f**; intake / echo+XADD **%.3f**; echo+XADD / bare echo **%.3f**.\n\n",
			ratio(in.RPS, bare.RPS), ratio(in.RPS, x.RPS), ratio(x.RPS, bare.RPS))
		if m.Redis != "" {
			p("Redis at the end: %s.\n\n", m.Redis)
		}
		if m.Mode == "always" {
			p("#### Floors (the issue's, for appendfsync always)\n\n| floor | measured | |\n|---|---:|---|\n")
			for _, f := range floors(m) {
				p("| %s | %s | **%s** |\n", f.Name, f.Measured, pass(f.Pass))
			}
			p("\n")
		}
	}

	p("### Every run\n\n| fsync | round | case | req/s | p50 | p99 | requests | problem |\n|---|---:|---|---:|---:|---:|---:|---|\n")
	for _, m := range r.Modes {
		for _, x := range m.Runs {
			p("| %s | %d | %s | %.0f | %s | %s | %d | %s |\n", m.Mode, x.Round, x.Case, x.RPS, fmtDur(x.P50), fmtDur(x.P99), x.Requests, mdEscape(x.Problem))
		}
	}
	p("\n")

	for _, m := range r.Modes {
		if m.Profile == nil {
			continue
		}
		pr := m.Profile
		p("### CPU profile of consultd (appendfsync %s)\n\n", m.Mode)
		if pr.Err != nil {
			p("Not captured: %s\n\n", mdEscape(pr.Err.Error()))
			continue
		}
		p("%s of CPU profile from `CONSULT_PPROF_ADDR` during an extra intake run (%.0f req/s while profiled; not counted above), "+
			"saved as `bench/cpu.pprof`. `go tool pprof -top -nodecount=25 bin/consultd bench/cpu.pprof`:\n\n```\n%s\n```\n\n",
			o.ProfileFor, pr.RPS, pr.Top)
		p("The same, by cumulative time (`-top -cum`), to see which calls the time is spent under:\n\n```\n%s\n```\n\n", cumRows(pr.Cum))
	}

	p("### Reading the figures\n\n")
	p("- Everything shares this machine's %d CPUs: wrk's two threads, the server under test, Redis and, for the intake, "+
		"consultd's comment workers, which read the intake stream and settle each comment while the load runs. "+
		"The absolute rates say as much about the machine as about the code; the ratios between cases that ran "+
		"interleaved on the same Redis are the figures to compare across machines.\n", mc.CPUs)
	p("- wrk 4 measures latency from when it sends a request, on a closed loop of %d connections: when the server "+
		"stalls, wrk sends less, so p99 understates what clients arriving at a steady rate would see (coordinated omission).\n", o.Conns)
	p("- redis XADD is the ceiling of what the Redis under these persistence settings takes from %d clients; "+
		"its latencies come from redis-benchmark's own histogram.\n", o.Conns)
	p("- Under appendfsync always Redis fsyncs the AOF before it answers each event-loop batch of writes, " +
		"so the disk's fsync latency sets the pace; everysec shows the same code without that wait.\n")
	return b.String()
}

// cumRows drops the header that -top -cum repeats from -top.
func cumRows(s string) string {
	if i := strings.Index(s, "      flat"); i >= 0 {
		return s[i:]
	}
	return s
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// fmtDur prints a latency the way people read them: 850µs, 1.23ms, 25.0ms, 1.20s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
