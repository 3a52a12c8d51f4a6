package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"consult/bench/internal/child"
	"consult/bench/internal/consultd"
	"consult/internal/smtptest"
)

// draftID is the draft the load comments on; every run has its own Redis.
const draftID = "chaos-draft"

// recipients receive the digest; each must get exactly one.
var recipients = []string{"office@chaos.example.gov.cn", "director@chaos.example.gov.cn"}

// config is one chaos run.
type config struct {
	Consultd    string // the binary under test
	RedisServer string // redis-server; empty finds it
	Dir         string // Redis's files, the replicas' data directories and logs
	Replicas    int
	Load        loadConfig
	Plan        []fault
	Mail        *smtptest.Server // where the replicas send digests
	// DigestWait is how long after the window closed the digests may take. The
	// scheduler waits until every queued comment is settled, and a comment read
	// by a replica that was then killed is claimed by another only once it has
	// been pending for 30 s (store.WorkerConfig.ClaimIdle).
	DigestWait time.Duration
	Progress   io.Writer
}

// outcome is everything a run observed.
type outcome struct {
	Seed                uint64
	Replicas            int
	Clients             int
	Rate                float64
	Began, LoadBegan    time.Time
	LoadEnded, ClosesAt time.Time
	Ended               time.Time
	Subs                []*submission
	Attempts            int
	Failed              map[errKind]int
	Answers             map[string]int
	Faults              []injected
	Digests             []digest
	Undelivered         int64 // the replicas' undeliveredMetric, summed
	UndeliveredExposed  bool
	Crashed             []string // replicas that exited without being asked
}

// run starts Redis and the replicas, creates the draft, runs the load and the
// faults together, lets the window close and collects the digests. Every process
// it started is stopped when it returns, Redis last. An error means the run
// could not be carried out; what it found is in the outcome.
func run(ctx context.Context, cfg config) (*outcome, error) {
	o := &outcome{Seed: cfg.Load.Seed, Replicas: cfg.Replicas, Clients: cfg.Load.Clients, Rate: cfg.Load.Rate, Began: time.Now()}
	say := func(format string, a ...any) { fmt.Fprintf(cfg.Progress, format+"\n", a...) }

	rs, err := newRedisServer(cfg.RedisServer, filepath.Join(cfg.Dir, "redis"))
	if err != nil {
		return nil, err
	}
	if err := rs.start(ctx); err != nil {
		return nil, err
	}
	defer rs.stop() // deferred first, so it runs last: after every replica stopped

	token := consultd.NewToken()
	replicas := make([]*replica, cfg.Replicas)
	for i := range replicas {
		addr, err := child.FreeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("consultd-%d", i+1)
		replicas[i] = &replica{
			name: name, addr: addr, bin: cfg.Consultd, logPath: filepath.Join(cfg.Dir, name+".log"),
			env: consultd.Env(
				"CONSULT_ADDR="+addr, "DATA_DIR="+filepath.Join(cfg.Dir, name), "REDIS_URL=redis://"+rs.addr()+"/0",
				"SMTP_URL=smtp://"+cfg.Mail.Addr, "MAIL_FROM=consult@chaos.example.gov.cn",
				"CONSULT_ADMIN_TOKEN="+token, "CONSULT_DEMO=false", "CONSULT_DIGEST_RETRY=1s", "CONSULT_LOG_LEVEL=warn",
				// Switches off the per-client limits: every comment here comes
				// from 127.0.0.1. An older consultd ignores it.
				"CONSULT_LIMITS=off",
			),
		}
	}
	defer func() {
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(r.stop)
		}
		wg.Wait()
	}()
	for _, r := range replicas {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	say("chaos: redis-server on %s, %d replicas: %s … (logs in %s)", rs.addr(), len(replicas), replicas[0].addr, cfg.Dir)

	// The window stays open for the load, the last retries and their timeout, and
	// a margin: a comment refused as late would be a failure of the harness.
	o.ClosesAt = time.Now().Add(cfg.Load.For + cfg.Load.RetryFor + cfg.Load.Timeout + 2*time.Second)
	section, err := consultd.CreateDraft(ctx, replicas[0].base(), token, consultd.Draft{
		ID: draftID, Title: "故障演练用规章草案", Summary: "在进程崩溃、Redis 重启和停顿下检验意见不丢不重。",
		Text:     "第一章 总则\n第一条 为了规范公开征求意见工作，制定本办法。\n第二条 本办法适用于本市行政机关起草的规章草案。\n",
		ClosesAt: o.ClosesAt, Recipients: recipients,
	})
	if err != nil {
		return nil, fmt.Errorf("%w; %s's log:\n%s", err, replicas[0].name, child.Tail(replicas[0].logPath, 1500))
	}

	targets := make([]string, len(replicas))
	for i, r := range replicas {
		targets[i] = r.base() + "/api/v1/drafts/" + draftID + "/comments"
	}
	ld := newLoad(cfg.Load, targets, func(marker string) []byte { return commentJSON(section, marker) })
	inj := &injector{plan: cfg.Plan, redis: rs, replicas: replicas, log: cfg.Progress}
	scraper := newUndeliveredScraper(replicas)
	sctx, stopScraper := context.WithCancel(ctx)
	defer stopScraper()
	go scraper.Run(sctx)

	say("chaos: %s of load, %d clients at %.0f comments/s, %d faults; the window closes at %s",
		cfg.Load.For, cfg.Load.Clients, cfg.Load.Rate, len(cfg.Plan), o.ClosesAt.Format("15:04:05"))
	o.LoadBegan = time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { ld.Run(ctx, o.LoadBegan) })
	wg.Go(func() { inj.Run(ctx, o.LoadBegan) })
	wg.Wait()
	o.LoadEnded = time.Now()
	o.Subs, o.Attempts, o.Failed, o.Answers = ld.results()
	o.Faults = inj.done
	if err := ctx.Err(); err != nil {
		return o, err
	}
	for _, f := range o.Faults {
		if f.Err != nil {
			return o, fmt.Errorf("fault at t+%.1fs (%s): %w", f.Began.Seconds(), f.Kind, f.Err)
		}
	}
	say("chaos: load over: %d submissions, %d receipts; waiting for the window to close and the digests", len(o.Subs), o.receipts())

	msgs := waitDigests(ctx, cfg.Mail, recipients, o.ClosesAt.Add(cfg.DigestWait), 3*time.Second)
	if err := ctx.Err(); err != nil {
		return o, err
	}
	for _, m := range msgs {
		o.Digests = append(o.Digests, readDigest(m))
	}
	scraper.scrapeAll(ctx)
	o.Undelivered, o.UndeliveredExposed = scraper.total()
	o.Crashed = exitedUnasked(replicas)
	o.Ended = time.Now()
	return o, nil
}

// commentJSON is one citizen's comment with the submission's marker in the body.
// The marker also keeps the texts apart: every client here has the same address,
// and consult flags a text one client sent before as a duplicate.
func commentJSON(section, marker string) []byte {
	body := marker + " 建议在第一条中明确本办法的适用范围，对于涉及群众切身利益的事项，应当在作出决定前充分听取公众意见，" +
		"并在规定期限内公开意见采纳情况及理由。"
	b, _ := json.Marshal(consultd.NewComment(section, body))
	return b
}

// receipts counts the submissions that got a receipt.
func (o *outcome) receipts() int {
	n := 0
	for _, s := range o.Subs {
		if s.Receipt != "" {
			n++
		}
	}
	return n
}

// keyed counts the submissions sent with an Idempotency-Key.
func (o *outcome) keyed() int {
	n := 0
	for _, s := range o.Subs {
		if s.Key != "" {
			n++
		}
	}
	return n
}
