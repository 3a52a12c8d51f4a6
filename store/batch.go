package store

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the comments of concurrent submissions to Redis together: one
// pipeline per round trip, and in it one intake script call per draft carrying
// all of that draft's comments. The intake is one round trip per comment, and
// under load those round trips and the cost of entering Lua, not the HTTP stack,
// decide how many comments a process takes in. Nothing waits to fill a batch: a
// batch is what queued while the previous one was in flight, so a lone comment
// goes at once.
type batcher struct {
	rdb   redis.UniversalClient
	calls chan *call
	max   int
	// maxComments and maxBytes are the default caps of a draft (-1, 0: caps
	// off); ttl is how long an idempotency key is kept.
	maxComments, maxBytes int64
	ttl                   time.Duration
	log                   *slog.Logger

	// offsetMs is Redis's clock minus this process's, as last measured from a
	// quick reply: it turns a caller's deadline into the not-after time the
	// script checks with Redis's clock.
	offsetMs atomic.Int64
	// undelivered counts comments stored after their caller stopped waiting.
	undelivered atomic.Int64
	// shed counts comments refused because the queue was full.
	shed  atomic.Int64
	recon *reconciler

	once   sync.Once
	stop   chan struct{} // closed by close: the lanes return
	closed sync.Once
	lanes  sync.WaitGroup
}

// call is one comment waiting for its outcome. state settles the race between
// the caller giving up and the outcome arriving: whoever moves it from waiting
// decides whether the caller got the receipt.
type call struct {
	draftID string
	keys    [6]string
	p       *pending
	out     outcome
	err     error
	done    chan struct{}
	state   atomic.Int32
}

const (
	callWaiting int32 = iota
	callLeft          // the caller stopped waiting: no receipt was delivered
	callAnswered
)

// notAfterMargin is taken off a caller's deadline, so that the script refuses a
// comment a little before the caller would give up rather than just after.
const notAfterMargin = 100 * time.Millisecond

func newBatcher(rdb redis.UniversalClient, lanes, max int, log *slog.Logger) *batcher {
	b := &batcher{rdb: rdb, calls: make(chan *call, lanes*max), max: max, stop: make(chan struct{}), log: log}
	b.recon = newReconciler(rdb, &b.undelivered, log)
	return b
}

// errBusy is a submission refused because the intake's queue is full.
var errBusy = &unavailableError{err: errors.New("store: intake queue full")}

// errClosed is a submission after the store was closed (at shutdown, after HTTP
// stopped taking requests, so no citizen sees it).
var errClosed = errors.New("store: intake closed")

// start runs the lanes, on first use: each gathers what is queued and sends it as
// one pipeline, so several batches can be in flight at once. They run until close.
func (b *batcher) start(lanes int) {
	b.once.Do(func() {
		b.lanes.Add(lanes + 1)
		for i := 0; i < lanes; i++ {
			go func() { defer b.lanes.Done(); b.lane() }()
		}
		go func() { defer b.lanes.Done(); b.recon.run(b.stop) }()
	})
}

// close stops the lanes once the batches in flight are answered.
func (b *batcher) close() {
	b.closed.Do(func() { close(b.stop) })
	b.lanes.Wait()
}

func (b *batcher) lane() {
	batch := make([]*call, 0, b.max)
	for {
		var c *call
		select {
		case c = <-b.calls:
		case <-b.stop:
			return
		}
		batch = append(batch[:0], c)
	gather:
		for len(batch) < b.max {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		b.send(batch)
	}
}

// draftBatch is the comments of one draft in a batch: one script call.
type draftBatch struct {
	calls []*call
	cmd   *redis.Cmd
	keys  []string
	args  []any
}

// send runs one batch. It uses its own context, bounded by the latest of its
// callers' deadlines: one caller giving up must not cancel the others' comments
// half-way through a pipeline, and a stalled Redis must not hold a lane for ever.
func (b *batcher) send(batch []*call) {
	latest := time.Time{}
	groups := map[string]*draftBatch{}
	var order []*draftBatch
	for _, c := range batch {
		g := groups[c.draftID]
		if g == nil {
			g = &draftBatch{}
			groups[c.draftID] = g
			order = append(order, g)
		}
		g.calls = append(g.calls, c)
		latest = later(latest, c.p.notAfter)
	}
	// Callers that already left need no wait: the script refuses them by its
	// not-after time, and it must be able to say so.
	ctx, cancel := context.WithDeadline(context.Background(), later(latest, time.Now()).Add(time.Second))
	defer cancel()
	ttl := int64(b.ttl / time.Second)
	offset := b.offsetMs.Load()
	for _, g := range order {
		g.keys, g.args = b.script(g.calls, ttl, b.maxComments, b.maxBytes, offset)
	}
	sent := time.Now()
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, g := range order {
			g.cmd = intakeScript.EvalSha(ctx, p, g.keys, g.args...)
		}
		return nil
	})
	for _, g := range order {
		v, err := g.cmd.Result()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// First use on this server, or a restarted one: Run loads the script.
			// Running it again is safe: it never stores a code twice.
			v, err = intakeScript.Run(ctx, b.rdb, g.keys, g.args...).Result()
		}
		var outs []outcome
		if err == nil {
			var now int64
			now, outs, err = parseIntake(v, len(g.calls))
			if err == nil && time.Since(sent) < 50*time.Millisecond {
				b.offsetMs.Store(now - time.Now().UnixMilli())
			}
		}
		for i, c := range g.calls {
			if err != nil {
				c.err = err
			} else {
				c.out = outs[i]
			}
			b.answer(c)
		}
	}
}

// script builds one intake script call for the comments of one draft.
func (b *batcher) script(cs []*call, ttl, maxN, maxB, offsetMs int64) ([]string, []any) {
	keys := append(make([]string, 0, 6+len(cs)), cs[0].keys[:]...)
	args := make([]any, 0, 3+8*len(cs))
	args = append(args, ttl, maxN, maxB)
	for _, c := range cs {
		p := c.p
		ix := "0"
		if p.idemKey != "" {
			keys = append(keys, p.idemKey)
			ix = strconv.Itoa(len(keys))
		}
		pers := ""
		if p.personal != nil {
			pers = string(p.personal)
		}
		// The script compares it with Redis's time as a string: 13 digits until
		// the year 2286.
		notAfter := strconv.FormatInt(p.notAfter.Add(-notAfterMargin).UnixMilli()+offsetMs, 10)
		args = append(args, p.code, p.entry, pers, ix, p.content, p.dup, p.size, notAfter)
	}
	return keys, args
}

// answer hands a call its outcome, unless its caller has left: then a comment
// stored is one whose receipt nobody received, counted as such, and a comment
// whose fate the transport hid is looked up later.
func (b *batcher) answer(c *call) {
	answered := c.state.CompareAndSwap(callWaiting, callAnswered)
	switch {
	case c.err != nil && outage(c.err):
		// The script may or may not have run; the caller gets an error either way.
		b.recon.check(c.draftID, c.p.code)
	case !answered && c.err == nil && (c.out.kind == "OK"):
		b.undelivered.Add(1)
		b.recon.count(c.draftID)
	}
	close(c.done)
}

// run queues one comment and waits for its outcome, or for ctx.
func (b *batcher) run(ctx context.Context, c *call) (outcome, error) {
	c.done = make(chan struct{})
	select {
	case b.calls <- c:
	case <-b.stop:
		return outcome{}, errClosed
	default:
		// The queue holds what Redis takes in well under a second; past it a
		// flash crowd is told at once to come back (503 with Retry-After), rather
		// than queued into a wait that ends in the same answer seconds later.
		b.shed.Add(1)
		return outcome{}, errBusy
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-b.stop:
		// A call queued just as the lanes stopped is never sent.
		select {
		case <-c.done:
			return c.out, c.err
		default:
			return outcome{}, errClosed
		}
	case <-ctx.Done():
		if !c.state.CompareAndSwap(callWaiting, callLeft) {
			<-c.done // answered just now: the receipt is delivered after all
			return c.out, c.err
		}
		// The script may still run before its not-after time: the comment is then
		// stored once, without a delivered receipt, and counted (see answer); a
		// retry with the same Idempotency-Key gets the receipt.
		return outcome{}, ctx.Err()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// reconciler finds out, once Redis answers again, whether comments whose
// outcome a transport error hid were stored, and counts those that were as
// stored without a delivered receipt: in this process's metric and in the
// draft's counts hash, which the digest and the record read.
type reconciler struct {
	rdb         redis.UniversalClient
	undelivered *atomic.Int64
	log         *slog.Logger
	queue       chan unknown
}

type unknown struct {
	draftID, code string
	count         bool // only count: the outcome is known to be stored
}

// reconcileQueue bounds what a long outage may leave to look up; past it a
// comment's fate is left to the digest, which lists every stored comment anyway.
const reconcileQueue = 16384

func newReconciler(rdb redis.UniversalClient, n *atomic.Int64, log *slog.Logger) *reconciler {
	return &reconciler{rdb: rdb, undelivered: n, log: log, queue: make(chan unknown, reconcileQueue)}
}

func (r *reconciler) check(draftID, code string) { r.put(unknown{draftID: draftID, code: code}) }
func (r *reconciler) count(draftID string)       { r.put(unknown{draftID: draftID, count: true}) }

func (r *reconciler) put(u unknown) {
	select {
	case r.queue <- u:
	default:
		r.log.Warn("intake: reconcile queue full; an unanswered comment's outcome is not counted", "draft", u.draftID)
	}
}

// run works through the queue until stop. A lookup waits for Redis: the script
// of a stalled server runs, or is refused by its not-after time, once the
// server goes on, before later commands from this process are answered.
func (r *reconciler) run(stop <-chan struct{}) {
	for {
		var u unknown
		select {
		case u = <-r.queue:
		case <-stop:
			return
		}
		r.settle(u, stop)
	}
}

func (r *reconciler) settle(u unknown, stop <-chan struct{}) {
	wait := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var err error
		if u.count {
			err = r.rdb.HIncrBy(ctx, countsHash(u.draftID), "undelivered", 1).Err()
		} else {
			var stored bool
			stored, err = r.rdb.HExists(ctx, receiptsHash(u.draftID), u.code).Result()
			if err == nil && stored {
				r.undelivered.Add(1)
				u.count = true
				cancel()
				continue
			}
		}
		cancel()
		if err == nil {
			return
		}
		if attempt >= 20 {
			r.log.Warn("intake: could not reconcile a comment's outcome", "draft", u.draftID, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return
		}
		wait = min(2*wait, 5*time.Second)
	}
}
