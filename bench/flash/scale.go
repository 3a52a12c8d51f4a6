package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"consult/bench/internal/consultd"
	"consult/bench/internal/results"
)

// scaleOptions are the flags of `scale`.
type scaleOptions struct {
	common
	Dur      time.Duration
	Warmup   time.Duration
	Conns    int
	Timeout  time.Duration
	Replicas []int
	Backends []string
	Drafts   int
	Baseline bool
}

func parseScaleFlags(args []string) (scaleOptions, error) {
	var o scaleOptions
	var replicas, backends string
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	o.common.register(fs)
	fs.DurationVar(&o.Dur, "d", 10*time.Second, "each measured point")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "closed-loop warm-up before each point; 0 for none")
	fs.IntVar(&o.Conns, "c", 64, "connections of the closed-loop generator, in all (spread over the replicas)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "the client's bound on one request")
	fs.StringVar(&replicas, "replicas", "1,2,3", "consultd replica counts to measure")
	fs.StringVar(&backends, "backends", "redis,cluster", "redis (one redis-server) and/or cluster (three masters)")
	fs.IntVar(&o.Drafts, "drafts", 1, "drafts commented on, round-robin: a draft's keys share one Cluster slot, so one draft loads one master")
	fs.BoolVar(&o.Baseline, "xadd", true, "measure bare XADD with redis-benchmark on one redis-server, beside the points")
	quick := fs.Bool("quick", false, "a short trial of the harness: -d 2s -warmup 1s unless given")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/flash scale [flags]   (after `make build`; `make bench-scale` does both)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Args = append([]string{"scale"}, args...)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["d"] {
			o.Dur = 2 * time.Second
		}
		if !set["warmup"] {
			o.Warmup = time.Second
		}
	}
	var errs []error
	for _, s := range strings.Split(replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 16 {
			errs = append(errs, fmt.Errorf("-replicas: %q is not a count from 1 to 16", s))
			continue
		}
		o.Replicas = append(o.Replicas, n)
	}
	for _, s := range strings.Split(backends, ",") {
		s = strings.TrimSpace(s)
		if s != "redis" && s != "cluster" {
			errs = append(errs, fmt.Errorf("-backends: %q is not redis or cluster", s))
			continue
		}
		o.Backends = append(o.Backends, s)
	}
	if o.Dur < time.Second || o.Conns < 1 || o.Drafts < 1 || o.Timeout <= 0 {
		errs = append(errs, errors.New("-d: at least 1s; -c, -drafts: at least 1; -timeout: more than 0"))
	}
	errs = append(errs, o.common.check())
	return o, errors.Join(errs...)
}

// scalePoint is one measured point: some replicas on one backend.
type scalePoint struct {
	Backend  string
	Replicas int
	Took     time.Duration
	Tally    tallySnapshot
	RPS      float64 // 202s per second
	Counted  int64   // the replicas' consult_comments_receipts_issued_total, summed, during the point
	Problem  string  // why the point is not a clean measurement
	Err      error   // it did not run
}

func runScale(ctx context.Context, o scaleOptions) int {
	t, tmp, cleanup, code := o.setUp(true, "consult-scale-")
	if code != 0 {
		return code
	}
	defer cleanup()
	rep := scaleReport{Opts: o, Machine: readMachine(t.RedisServer), Start: time.Now()}
	n := len(o.Backends) * len(o.Replicas)
	fmt.Printf("flash scale: %d points × (%s warm-up + %s) plus start-up: about %s\n", n, o.Warmup, o.Dur,
		(time.Duration(n)*(o.Warmup+o.Dur+8*time.Second) + 30*time.Second).Round(10*time.Second))

	if o.Baseline {
		rep.XADD = measureXADD(ctx, o, t, filepath.Join(tmp, "xadd"))
	}
	for _, b := range o.Backends {
		for _, r := range o.Replicas {
			if ctx.Err() != nil {
				break
			}
			p := runScalePoint(ctx, o, t, b, r, filepath.Join(tmp, fmt.Sprintf("%s-%d", b, r)))
			rep.Points = append(rep.Points, p)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "flash: interrupted; servers stopped, RESULTS.md left as it was")
		return 130
	}
	rep.End, rep.LoadAfter = time.Now(), results.LoadAvg()
	fmt.Println()
	fmt.Print(rep.text())
	out := o.outPath()
	if err := results.WriteSection(out, "scale", rep.markdown()); err != nil {
		fmt.Fprintln(os.Stderr, "flash:", err)
		return 1
	}
	fmt.Println("\nwritten: the scale section of", out)
	if f := rep.failures(); len(f) > 0 {
		failBanner("SCALE RUN FAILED: the figures above are not a clean measurement:", f)
		return 1
	}
	return 0
}

// measureXADD runs redis-benchmark's XADD of the same bytes on a fresh redis-server.
func measureXADD(ctx context.Context, o scaleOptions, t tools, dir string) *xaddBaseline {
	b, err := startRedis(ctx, t.RedisServer, filepath.Join(dir, "redis"))
	if err != nil {
		return &xaddBaseline{Err: err}
	}
	defer b.Stop()
	body, _ := consultd.CommentBody("art-1", o.BodyBytes)
	x := runXaddBaseline(ctx, t.RedisBenchmark, b.procs[0].Addr, o.Conns, body, o.Dur)
	if x.Err != nil {
		fmt.Fprintln(os.Stderr, "flash: redis-benchmark:", x.Err)
	} else {
		fmt.Printf("  baseline  redis-benchmark XADD, %d connections: %9.0f/s  p50 %-8s p99 %s\n", o.Conns, x.RPS, fmtDur(x.P50), fmtDur(x.P99))
	}
	return &x
}

// runScalePoint starts a fresh backend and n replicas on it, and loads them in
// a closed loop whose clients send to the replicas in turn.
func runScalePoint(ctx context.Context, o scaleOptions, t tools, kind string, n int, dir string) (p scalePoint) {
	p.Backend, p.Replicas = kind, n
	label := fmt.Sprintf("%-7s × %d", kind, n)
	fail := func(err error) scalePoint {
		p.Err = err
		if ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "flash: %s stopped: %v\n", label, err)
		}
		return p
	}
	var b *backend
	var err error
	if kind == "cluster" {
		b, err = startCluster(ctx, t.RedisServer, t.RedisCLI, filepath.Join(dir, "redis"))
	} else {
		b, err = startRedis(ctx, t.RedisServer, filepath.Join(dir, "redis"))
	}
	if err != nil {
		return fail(err)
	}
	defer b.Stop() // deferred first, so it runs last: after every replica stopped
	token := consultd.NewToken()
	var replicas []*consultd.Server
	defer func() {
		for _, c := range replicas {
			c.Stop()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := consultd.Start(ctx, consultd.Options{Bin: t.Consultd, Dir: dir, Name: "consultd" + strconv.Itoa(i),
			RedisURL: b.URL(), Token: token, Pprof: true, Env: []string{"CONSULT_LIMITS=off"}})
		if err != nil {
			return fail(err)
		}
		replicas = append(replicas, c)
	}
	var urls []string
	var bodies [][]byte
	for d := 0; d < o.Drafts; d++ {
		id := "scale-" + strconv.Itoa(d+1)
		anchor, err := consultd.CreateDraft(ctx, replicas[0].Base(), token, consultd.Draft{ID: id})
		if err != nil {
			return fail(fmt.Errorf("%w; consultd's log:\n%s", err, replicas[0].LogTail()))
		}
		body, _ := consultd.CommentBody(anchor, o.BodyBytes)
		for _, c := range replicas {
			urls = append(urls, c.Base()+"/api/v1/drafts/"+id+"/comments")
			bodies = append(bodies, body)
		}
	}
	pst := newPoster(o.Conns, o.Timeout)
	defer pst.close()
	for i, u := range urls {
		if first := pst.post(ctx, u, bodies[i], ""); first.Status != http.StatusAccepted {
			return fail(fmt.Errorf("%s answered the first comment with %d %s %v", u, first.Status, first.Detail, first.Err))
		}
	}
	// Request i goes to URL i mod len: the replicas (and drafts) in turn, whichever
	// client sends it.
	send := func(ctx context.Context, _ int, i int64) outcome {
		k := int(i % int64(len(urls)))
		return pst.post(ctx, urls[k], bodies[k], "")
	}
	if o.Warmup > 0 {
		closedLoop{Conns: o.Conns, Duration: o.Warmup, Send: send}.Run(ctx)
	}
	counted := func() (int64, error) {
		var sum int64
		for _, c := range replicas {
			m, err := consultd.Metrics(ctx, c.Base())
			if err != nil {
				return 0, err
			}
			sum += int64(m["consult_comments_receipts_issued_total"])
		}
		return sum, nil
	}
	before, err := counted()
	if err != nil {
		return fail(err)
	}
	tl, took := closedLoop{Conns: o.Conns, Duration: o.Dur, Send: send}.Run(ctx)
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	for _, c := range replicas {
		if err := c.Alive(); err != nil {
			return fail(err)
		}
	}
	after, err := counted()
	if err != nil {
		return fail(err)
	}
	p.Took, p.Tally, p.Counted = took, tl.snapshot(), after-before
	p.RPS = float64(p.Tally.Counts[ansAccepted]) / took.Seconds()
	var probs []string
	if n := p.Tally.Total() - p.Tally.Counts[ansAccepted]; n > 0 {
		probs = append(probs, fmt.Sprintf("%d answers were not 202 (%s)", n, breakdown(p.Tally)))
	}
	if p.Counted < p.Tally.Counts[ansAccepted] {
		probs = append(probs, fmt.Sprintf("the replicas counted %d receipts for %d 202s", p.Counted, p.Tally.Counts[ansAccepted]))
	}
	p.Problem = strings.Join(probs, "; ")
	line := fmt.Sprintf("  %s  %9.0f 202/s  p50 %-8s p99 %-8s", label, p.RPS, fmtDur(p.Tally.P50), fmtDur(p.Tally.P99))
	if p.Problem != "" {
		line += "  !! " + p.Problem
	}
	fmt.Println(line)
	return p
}

// scaleReport is a whole `scale` run.
type scaleReport struct {
	Opts       scaleOptions
	Machine    machine
	Start, End time.Time
	LoadAfter  string
	XADD       *xaddBaseline
	Points     []scalePoint
}

func (r scaleReport) failures() []string {
	var f []string
	for _, p := range r.Points {
		switch {
		case p.Err != nil:
			f = append(f, fmt.Sprintf("%s × %d: did not run: %s", p.Backend, p.Replicas, firstLineOf(p.Err.Error())))
		case p.Problem != "":
			f = append(f, fmt.Sprintf("%s × %d: %s", p.Backend, p.Replicas, p.Problem))
		}
	}
	if r.XADD != nil && r.XADD.Err != nil {
		f = append(f, "the XADD baseline: "+firstLineOf(r.XADD.Err.Error()))
	}
	return f
}

// base is the baseline point: one replica on one redis-server (or the first point).
func (r scaleReport) base() *scalePoint {
	for i, p := range r.Points {
		if p.Backend == "redis" && p.Replicas == 1 && p.Err == nil {
			return &r.Points[i]
		}
	}
	for i, p := range r.Points {
		if p.Err == nil {
			return &r.Points[i]
		}
	}
	return nil
}

func (r scaleReport) rows() [][]string {
	base := r.base()
	var rows [][]string
	for _, p := range r.Points {
		backend := "one redis-server"
		if p.Backend == "cluster" {
			backend = "Cluster, 3 masters"
		}
		if p.Err != nil {
			rows = append(rows, []string{backend, fmt.Sprint(p.Replicas), "did not run", "", "", "", ""})
			continue
		}
		rel := "–"
		if base != nil && base.RPS > 0 {
			rel = fmt.Sprintf("%.2f", p.RPS/base.RPS)
		}
		rows = append(rows, []string{backend, fmt.Sprint(p.Replicas), fmt.Sprintf("%.0f", p.RPS), rel,
			fmtDur(p.Tally.P50), fmtDur(p.Tally.P99), fmt.Sprint(p.Tally.Total() - p.Tally.Counts[ansAccepted])})
	}
	if x := r.XADD; x != nil && x.Err == nil {
		rel := "–"
		if base != nil && base.RPS > 0 {
			rel = fmt.Sprintf("%.2f", x.RPS/base.RPS)
		}
		rows = append(rows, []string{"bare XADD, no HTTP (redis-benchmark)", "–", fmt.Sprintf("%.0f", x.RPS), rel, fmtDur(x.P50), fmtDur(x.P99), "–"})
	}
	return rows
}

// header names the ratio column after the point it divides by.
func (r scaleReport) header() []string {
	base := "× base"
	if b := r.base(); b != nil && b.Backend == "redis" && b.Replicas == 1 {
		base = "× 1 replica on one Redis"
	} else if b != nil {
		base = fmt.Sprintf("× %s with %d replicas", b.Backend, b.Replicas)
	}
	return []string{"Redis", "replicas", "202/s", base, "p50", "p99", "not 202"}
}

func (r scaleReport) text() string {
	return "scale\n" + textTable(r.header(), r.rows())
}

func (r scaleReport) markdown() string {
	var b strings.Builder
	o := r.Opts
	b.WriteString("## Past one machine: replicas and a Cluster\n\n")
	b.WriteString("Written by `make bench-scale` (bench/flash); regenerate it rather than editing it.\n\n")
	fmt.Fprintf(&b, "- Command: `%s`\n", o.command())
	fmt.Fprintf(&b, "- Date: %s to %s (UTC)\n", r.Start.UTC().Format("2006-01-02 15:04:05"), r.End.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine.markdown())
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s\n", r.Machine.LoadAvg, r.LoadAfter)
	if f := r.failures(); len(f) > 0 {
		b.WriteString("- **Result: FAILED**: not a clean measurement:\n")
		for _, s := range f {
			b.WriteString("  - " + s + "\n")
		}
	} else {
		b.WriteString("- Result: every answer was 202 and the replicas counted every receipt.\n")
	}
	b.WriteString("\n")
	drafts := "one draft (so, on the Cluster, one slot and one master)"
	if o.Drafts > 1 {
		drafts = fmt.Sprintf("%d drafts in turn (each draft's keys on one slot)", o.Drafts)
	}
	fmt.Fprintf(&b, "Each point starts afresh: a redis-server, or three in cluster mode joined by `redis-cli --cluster create` "+
		"(appendfsync always, `internal/redisproc`), then *n* `bin/consultd` replicas on it (REDIS_URL to the server, or the Cluster's "+
		"host:port list; CONSULT_LIMITS=off; 2 comment workers each), all on this machine. A closed-loop Go generator with %d connections in all "+
		"sends `POST /api/v1/drafts/{id}/comments` (a %d-byte JSON comment, Chinese text) to the replicas in turn, "+
		"on %s, for %s after a %s warm-up; client timeout %s. The figures are 202s per second and the latency of the 202s.\n\n",
		o.Conns, o.BodyBytes, drafts, o.Dur, o.Warmup, o.Timeout)
	b.WriteString(mdTable(r.header(), "lrrrrrr", r.rows()))
	b.WriteString("\n")
	b.WriteString(r.sentence())
	return b.String()
}

// sentence is the template of the prose the lead finishes: it states what two
// cores can and cannot show, with the figures filled in.
func (r scaleReport) sentence() string {
	at := func(kind string, n int) string {
		base := r.base()
		for _, p := range r.Points {
			if p.Backend == kind && p.Replicas == n && p.Err == nil && base != nil && base.RPS > 0 {
				return fmt.Sprintf("%.2f×", p.RPS/base.RPS)
			}
		}
		return "(not measured)"
	}
	maxN := 0
	for _, n := range r.Opts.Replicas {
		maxN = max(maxN, n)
	}
	return fmt.Sprintf("On %d cores shared by the generator, every replica and every Redis node, these figures show what replicas "+
		"and a Cluster **cost**, not the speedup they would give on separate machines: %d replicas on one redis-server reach %s "+
		"the one-replica rate, and %d replicas on the Cluster %s. The cost is more processes (each with its own runtime, "+
		"workers and connections) time-sharing the same cores, and on the Cluster a client that routes by slot across three "+
		"servers. What the figures predict for more cores: the intake script costs Redis about 62k instructions per comment "+
		"(callgrind, batches of 16, with a name and contact), so one Redis core takes in comments in the tens of thousands a "+
		"second, and consultd, which is stateless, scales out with replicas on cores of their own. One draft's keys share a slot, "+
		"so one draft's comments are taken in by one Cluster master; several drafts spread over the masters. A run on separate "+
		"machines (generator, replicas, Redis) would show the speedup these two cores cannot.\n", r.Machine.CPUs, maxN, at("redis", maxN), maxN, at("cluster", maxN))
}
