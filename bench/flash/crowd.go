package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"consult/bench/internal/consultd"
	"consult/bench/internal/results"
)

// crowdOptions are the flags of `crowd`, the flash crowd.
type crowdOptions struct {
	common
	Dur          time.Duration
	Rate         float64
	Times        float64
	Conns        int
	InFlight     int
	Timeout      time.Duration
	LateAfter    time.Duration
	ProbeConns   int
	ProbeDur     time.Duration
	Warmup       time.Duration
	SampleEvery  time.Duration
	Limits       bool
	LimitsDur    time.Duration
	Clients      int
	ClientPerMin float64
	Abusers      int
	AbuserPerMin float64
}

func parseCrowdFlags(args []string) (crowdOptions, error) {
	var o crowdOptions
	fs := flag.NewFlagSet("crowd", flag.ContinueOnError)
	o.common.register(fs)
	fs.DurationVar(&o.Dur, "d", 60*time.Second, "how long the crowd offers its rate")
	fs.Float64Var(&o.Rate, "rate", 0, "offered rate in requests/s; 0: -x times what the probe sustained")
	fs.Float64Var(&o.Times, "x", 10, "offered rate as a multiple of the sustained rate (when -rate is 0)")
	fs.IntVar(&o.Conns, "c", 640, "connections the crowd may open (http.Transport MaxConnsPerHost)")
	fs.IntVar(&o.InFlight, "inflight", 0, "most requests outstanding at once; a request due beyond it is not offered (0: -c, so every request launched has a connection)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "the client's bound: a request not answered within it is a client timeout")
	fs.DurationVar(&o.LateAfter, "late", 10*time.Millisecond, "a request launched later than this after its due time counts as late")
	fs.IntVar(&o.ProbeConns, "probe-c", 64, "connections of the closed-loop probe that measures the sustained rate")
	fs.DurationVar(&o.ProbeDur, "probe-d", 10*time.Second, "length of the probe")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "closed-loop warm-up before the probe; 0 for none")
	fs.DurationVar(&o.SampleEvery, "sample", 250*time.Millisecond, "how often consultd's RSS is read from /proc/<pid>/status")
	fs.BoolVar(&o.Limits, "limits", true, "also run the crowd with limits on (many clients by X-Forwarded-For)")
	fs.DurationVar(&o.LimitsDur, "limits-d", 60*time.Second, "length of the limits-on run")
	fs.IntVar(&o.Clients, "clients", 2000, "limits on: ordinary clients, each its own X-Forwarded-For address")
	fs.Float64Var(&o.ClientPerMin, "client-rate", 2, "limits on: comments per minute of each ordinary client (keep it under consultd's per-client limit)")
	fs.IntVar(&o.Abusers, "abusers", 10, "limits on: abusive clients")
	fs.Float64Var(&o.AbuserPerMin, "abuser-rate", 120, "limits on: comments per minute of each abusive client (far above the per-client limit)")
	quick := fs.Bool("quick", false, "a short trial of the harness: -d 5s -probe-d 3s -warmup 1s -limits-d 10s unless given")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/flash crowd [flags]   (after `make build`; `make bench-flash` does both)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Args = append([]string{"crowd"}, args...)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		for name, v := range map[string]*time.Duration{"d": &o.Dur, "probe-d": &o.ProbeDur, "warmup": &o.Warmup, "limits-d": &o.LimitsDur} {
			if !set[name] {
				*v = map[string]time.Duration{"d": 5 * time.Second, "probe-d": 3 * time.Second, "warmup": time.Second, "limits-d": 10 * time.Second}[name]
			}
		}
	}
	if o.InFlight == 0 {
		o.InFlight = o.Conns
	}
	var errs []error
	if o.Dur < time.Second || o.ProbeDur < time.Second || o.LimitsDur < time.Second {
		errs = append(errs, errors.New("-d, -probe-d, -limits-d: at least 1s"))
	}
	if o.Rate < 0 || o.Times <= 0 {
		errs = append(errs, errors.New("-rate: 0 or more; -x: more than 0"))
	}
	if o.Conns < 1 || o.InFlight < 1 || o.ProbeConns < 1 {
		errs = append(errs, errors.New("-c, -inflight, -probe-c: at least 1"))
	}
	if o.Timeout <= 0 || o.LateAfter <= 0 || o.SampleEvery <= 0 {
		errs = append(errs, errors.New("-timeout, -late, -sample: more than 0"))
	}
	if o.Limits && (o.Clients < 1 || o.Abusers < 1 || o.ClientPerMin <= 0 || o.AbuserPerMin <= 0) {
		errs = append(errs, errors.New("-clients, -abusers, -client-rate, -abuser-rate: more than 0"))
	}
	errs = append(errs, o.common.check())
	return o, errors.Join(errs...)
}

// crowdDraft is the draft the crowd comments on.
const crowdDraft = "flash-crowd"

// offRun is the crowd with limits off: everything from one address, as fast as
// the schedule says.
type offRun struct {
	Env         []string
	BodyBytes   int
	BodyRunes   int
	Dials       int64 // connections opened, warm-up included
	Probe       tallySnapshot
	ProbeTook   time.Duration
	Sustained   float64 // 202s per second in the probe
	Target      float64 // the rate the crowd was to offer
	Offer       offerStats
	Crowd       tallySnapshot
	CrowdRate   float64 // 202s per second over the crowd's span
	Mem         memory
	Record      recordCheck
	ServerCount int64 // consult_comments_receipts_issued_total at the end
	Err         error // the run stopped early
}

// onRun is the crowd with limits on: ordinary and abusive clients told apart by
// X-Forwarded-For.
type onRun struct {
	Env      []string
	Ordinary classRun
	Abusive  classRun
	Record   recordCheck
	Mem      memory
	Err      error
}

// classRun is one class of clients of the limits-on run.
type classRun struct {
	Name    string
	Clients int
	PerMin  float64
	Offer   offerStats
	Tally   tallySnapshot
}

func runCrowd(ctx context.Context, o crowdOptions) int {
	t, tmp, cleanup, code := o.setUp(false, "consult-flash-")
	if code != 0 {
		return code
	}
	defer cleanup()
	mach := readMachine(t.RedisServer)
	start := time.Now()
	est := o.Warmup + o.ProbeDur + o.Dur + 2*o.Timeout + 30*time.Second
	if o.Limits {
		est += o.LimitsDur + o.Timeout + 10*time.Second
	}
	fmt.Printf("flash: the crowd (limits off) for %s after a %s probe", o.Dur, o.ProbeDur)
	if o.Limits {
		fmt.Printf(", then limits on for %s", o.LimitsDur)
	}
	fmt.Printf(": about %s\n", est.Round(10*time.Second))

	off := runLimitsOff(ctx, o, t, filepath.Join(tmp, "off"))
	var on *onRun
	if o.Limits && ctx.Err() == nil {
		r := runLimitsOn(ctx, o, t, filepath.Join(tmp, "on"))
		on = &r
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "flash: interrupted; servers stopped, RESULTS.md left as it was")
		return 130
	}
	rep := crowdReport{Opts: o, Machine: mach, Start: start, End: time.Now(), LoadAfter: results.LoadAvg(), Off: off, On: on}
	fmt.Println()
	fmt.Print(rep.text())
	out := o.outPath()
	if err := results.WriteSection(out, "flash", rep.markdown()); err != nil {
		fmt.Fprintln(os.Stderr, "flash:", err)
		return 1
	}
	fmt.Println("\nwritten: the flash section of", out)
	if w := rep.warnings(); len(w) > 0 {
		fmt.Fprintln(os.Stderr, "\nflash: the figures need a caveat (not failures):")
		for _, s := range w {
			fmt.Fprintln(os.Stderr, "  - "+s)
		}
	}
	if f := rep.failures(); len(f) > 0 {
		failBanner("FLASH CROWD FAILED: consultd broke a promise, or the run did not finish:", f)
		return 1
	}
	fmt.Println("\nflash: PASS: every promise held")
	return 0
}

// crowdServer is what a crowd comments on: a consultd on a fresh redis-server,
// and the crowd's draft.
type crowdServer struct {
	*consultd.Server
	redis *backend
	Body  []byte // the comment every request sends
	Runes int    // its body's length in characters
	URL   string // the draft's comments
}

// startCrowdServer starts a redis-server in dir and a consultd on it with env
// added to its settings, and creates the crowd's draft.
func startCrowdServer(ctx context.Context, o crowdOptions, t tools, dir string, env []string) (*crowdServer, error) {
	b, err := startRedis(ctx, t.RedisServer, filepath.Join(dir, "redis"))
	if err != nil {
		return nil, err
	}
	cd, err := consultd.Start(ctx, consultd.Options{Bin: t.Consultd, Dir: dir, Name: "consultd", RedisURL: b.URL(),
		Token: consultd.NewToken(), Pprof: true, Env: env})
	if err != nil {
		b.Stop()
		return nil, err
	}
	s := &crowdServer{Server: cd, redis: b, URL: cd.Base() + "/api/v1/drafts/" + crowdDraft + "/comments"}
	anchor, err := consultd.CreateDraft(ctx, cd.Base(), cd.Token, consultd.Draft{ID: crowdDraft})
	if err != nil {
		err = fmt.Errorf("%w; consultd's log:\n%s", err, cd.LogTail())
		s.stop()
		return nil, err
	}
	s.Body, s.Runes = consultd.CommentBody(anchor, o.BodyBytes)
	return s, nil
}

// stop stops consultd, then Redis.
func (s *crowdServer) stop() {
	s.Server.Stop()
	s.redis.Stop()
}

// runLimitsOff measures what the intake sustains, then offers -x times that for -d.
func runLimitsOff(ctx context.Context, o crowdOptions, t tools, dir string) (r offRun) {
	fail := func(err error) offRun {
		r.Err = err
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "flash: limits off stopped:", err)
		}
		return r
	}
	fmt.Println("\n== limits off (CONSULT_LIMITS=off)")
	r.Env = []string{"CONSULT_LIMITS=off"}
	srv, err := startCrowdServer(ctx, o, t, dir, r.Env)
	if err != nil {
		return fail(err)
	}
	defer srv.stop()
	cd, body, url := srv.Server, srv.Body, srv.URL
	r.BodyBytes, r.BodyRunes = len(body), srv.Runes

	p := newPoster(o.Conns, o.Timeout)
	defer p.close()
	// One comment first, so that a refused body is a clear message, not a table
	// full of 4xx. Its receipt, and the warm-up's, are looked up in the record too.
	first := p.post(ctx, url, body, "")
	if first.Status != http.StatusAccepted {
		return fail(fmt.Errorf("consultd answered the first comment with %d %s %v", first.Status, first.Detail, first.Err))
	}
	codes := []string{first.Code}
	r.Dials = p.warm(ctx, cd.Base()+"/healthz", o.Conns, 5)
	fmt.Printf("  connections open: %d (bound %d)\n", r.Dials, o.Conns)

	send := func(ctx context.Context, _ int, _ int64) outcome { return p.post(ctx, url, body, "") }
	if o.Warmup > 0 {
		w, _ := closedLoop{Conns: o.ProbeConns, Duration: o.Warmup, Send: send}.Run(ctx)
		codes = append(codes, w.receiptCodes()...)
	}
	probe, took := closedLoop{Conns: o.ProbeConns, Duration: o.ProbeDur, Send: send}.Run(ctx)
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	r.Probe, r.ProbeTook = probe.snapshot(), took
	r.Sustained = float64(r.Probe.Counts[ansAccepted]) / took.Seconds()
	fmt.Printf("  probe    closed loop, %d connections, %s: %.0f 202/s, p50 %s p99 %s (%d not 202)\n",
		o.ProbeConns, o.ProbeDur, r.Sustained, fmtDur(r.Probe.P50), fmtDur(r.Probe.P99), r.Probe.Total()-r.Probe.Counts[ansAccepted])
	r.Target = o.Rate
	if r.Target == 0 {
		r.Target = o.Times * r.Sustained
	}
	if r.Target < 1 {
		return fail(fmt.Errorf("nothing to offer: the probe sustained %.1f/s", r.Sustained))
	}
	if err := cd.Alive(); err != nil {
		return fail(err)
	}

	before, _ := readProcStatus(cd.Pid())
	gBefore, _, _ := goroutines(ctx, cd)
	smp := &sampler{c: cd, Every: o.SampleEvery}
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); _ = smp.Run(sctx) }()

	crowd := &tally{}
	loop := &openLoop{Rate: r.Target, Duration: o.Dur, MaxInFlight: int64(o.InFlight), LateAfter: o.LateAfter, Clock: newRealClock()}
	loop.Launch = func(_ int64, _ time.Time, done func()) {
		go func() {
			defer done()
			out := p.post(ctx, url, body, "")
			if ctx.Err() == nil {
				crowd.add(out)
			}
		}()
	}
	fmt.Printf("  crowd    open loop, %.0f/s for %s over at most %d connections, %d in flight, client timeout %s\n",
		r.Target, o.Dur, o.Conns, o.InFlight, o.Timeout)
	stopProgress := progress(ctx, crowd, loop, smp, time.Now())
	r.Offer = loop.Run(ctx)
	loop.Wait()
	stopProgress()
	stopSampling()
	sampling.Wait()
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	r.Crowd = crowd.snapshot()
	r.CrowdRate = float64(r.Crowd.Counts[ansAccepted]) / r.Offer.Span().Seconds()
	r.Dials = p.dials.Load()
	r.Mem = smp.result()
	r.Mem.Before, r.Mem.GBefore = before, gBefore
	if err := cd.Alive(); err != nil {
		return fail(err)
	}
	r.Mem.End, _ = readProcStatus(cd.Pid())
	r.Mem.HWMKB = r.Mem.End.HWMKB
	r.Mem.GEnd, _, _ = goroutines(ctx, cd)
	if m, err := consultd.Metrics(ctx, cd.Base()); err == nil {
		r.ServerCount = int64(m["consult_comments_receipts_issued_total"])
	}

	fmt.Println("  record   reading every comment back through the admin API …")
	codes = append(append(codes, probe.receiptCodes()...), crowd.receiptCodes()...)
	r.Record = checkRecord(ctx, cd.Base(), cd.Token, crowdDraft, codes)
	printRecord(r.Record)
	return r
}

// progress prints a line every 10 s while the crowd runs; the function it
// returns stops it.
func progress(ctx context.Context, t *tally, l *openLoop, s *sampler, start time.Time) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(10 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			snap := t.snapshot()
			mem := s.result()
			fmt.Printf("    %3.0fs  answered %8d: 202 %8d  503 %8d  other %6d  timeouts %6d  in flight %5d  peak RSS %s\n",
				time.Since(start).Seconds(), snap.Total(), snap.Counts[ansAccepted], snap.Counts[ansUnavailable],
				snap.Total()-snap.Counts[ansAccepted]-snap.Counts[ansUnavailable]-snap.Counts[ansTimeout],
				snap.Counts[ansTimeout], l.InFlight(), fmtMiB(mem.PeakRSSKB))
		}
	}()
	return func() { cancel(); <-done }
}

// ordinaryAddr and abusiveAddr are the X-Forwarded-For addresses of the
// simulated clients: 198.18.0.0/15 is set aside for benchmarks (RFC 2544), so
// they are nobody's.
func ordinaryAddr(k int) string { return fmt.Sprintf("198.18.%d.%d", k/250, k%250+1) }
func abusiveAddr(k int) string  { return fmt.Sprintf("198.19.255.%d", k%250+1) }

// runLimitsOn runs ordinary and abusive clients side by side against a consultd
// with its limits on that believes X-Forwarded-For from loopback.
func runLimitsOn(ctx context.Context, o crowdOptions, t tools, dir string) (r onRun) {
	fail := func(err error) onRun {
		r.Err = err
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "flash: limits on stopped:", err)
		}
		return r
	}
	fmt.Println("\n== limits on (CONSULT_TRUSTED_PROXIES=127.0.0.1/32, clients told apart by X-Forwarded-For)")
	r.Env = []string{"CONSULT_TRUSTED_PROXIES=127.0.0.1/32"}
	srv, err := startCrowdServer(ctx, o, t, dir, r.Env)
	if err != nil {
		return fail(err)
	}
	defer srv.stop()
	cd, body, url := srv.Server, srv.Body, srv.URL
	p := newPoster(o.Conns, o.Timeout)
	defer p.close()
	// The first comment comes from an address of neither class.
	first := p.post(ctx, url, body, "198.19.254.1")
	if first.Status != http.StatusAccepted {
		return fail(fmt.Errorf("consultd answered the first comment with %d %s %v", first.Status, first.Detail, first.Err))
	}
	codes := []string{first.Code}

	before, _ := readProcStatus(cd.Pid())
	gBefore, _, _ := goroutines(ctx, cd)
	smp := &sampler{c: cd, Every: o.SampleEvery}
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); _ = smp.Run(sctx) }()

	type class struct {
		run  *classRun
		addr func(int) string
		loop *openLoop
		t    *tally
	}
	r.Ordinary = classRun{Name: "ordinary", Clients: o.Clients, PerMin: o.ClientPerMin}
	r.Abusive = classRun{Name: "abusive", Clients: o.Abusers, PerMin: o.AbuserPerMin}
	classes := []*class{{run: &r.Ordinary, addr: ordinaryAddr}, {run: &r.Abusive, addr: abusiveAddr}}
	var wg sync.WaitGroup
	for _, c := range classes {
		c.t = &tally{}
		// Request i goes to client i mod clients: each client's comments are evenly
		// spaced at its own rate, and the clients' first ones are spread over one
		// interval rather than all at once.
		c.loop = &openLoop{Rate: float64(c.run.Clients) * c.run.PerMin / 60, Duration: o.LimitsDur,
			MaxInFlight: int64(o.InFlight), LateAfter: o.LateAfter, Clock: newRealClock()}
		c.loop.Launch = func(i int64, _ time.Time, done func()) {
			xff := c.addr(int(i % int64(c.run.Clients)))
			go func() {
				defer done()
				out := p.post(ctx, url, body, xff)
				if ctx.Err() == nil {
					c.t.add(out)
				}
			}()
		}
		fmt.Printf("  %-9s %d clients × %g/min = %.1f/s for %s\n", c.run.Name, c.run.Clients, c.run.PerMin, c.loop.Rate, o.LimitsDur)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run.Offer = c.loop.Run(ctx)
			c.loop.Wait()
		}()
	}
	wg.Wait()
	stopSampling()
	sampling.Wait()
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	for _, c := range classes {
		c.run.Tally = c.t.snapshot()
		codes = append(codes, c.t.receiptCodes()...)
		fmt.Printf("  %-9s sent %d: 202 %d, 429 %d (%d with Retry-After), 503 %d, other %d, timeouts %d\n", c.run.Name,
			c.run.Offer.Offered, c.run.Tally.Counts[ansAccepted], c.run.Tally.Counts[ansTooMany], c.run.Tally.RetryAfter[ansTooMany],
			c.run.Tally.Counts[ansUnavailable], c.run.Tally.Total()-c.run.Tally.Counts[ansAccepted]-c.run.Tally.Counts[ansTooMany]-c.run.Tally.Counts[ansUnavailable]-c.run.Tally.Counts[ansTimeout],
			c.run.Tally.Counts[ansTimeout])
	}
	r.Mem = smp.result()
	r.Mem.Before, r.Mem.GBefore = before, gBefore
	if err := cd.Alive(); err != nil {
		return fail(err)
	}
	r.Mem.End, _ = readProcStatus(cd.Pid())
	r.Mem.HWMKB = r.Mem.End.HWMKB
	r.Mem.GEnd, _, _ = goroutines(ctx, cd)
	r.Record = checkRecord(ctx, cd.Base(), cd.Token, crowdDraft, codes)
	printRecord(r.Record)
	return r
}

func printRecord(rc recordCheck) {
	if rc.Err != nil {
		fmt.Printf("  record   after %d comments: %v\n", rc.Read, rc.Err)
		return
	}
	fmt.Printf("  record   %d comments read in %s; %d receipts of 202s looked up, %d missing\n",
		rc.Read, rc.Took.Round(time.Millisecond), rc.Receipts, rc.Missing)
}
