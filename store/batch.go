package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher sends the intake scripts of concurrent submissions to Redis together, in
// one pipeline per round trip. The intake is one round trip per comment, and under
// load those round trips, not the HTTP stack, decide how many comments a process
// takes in: a pipeline of n scripts costs about one write and one read for all n,
// on consultd's side and on Redis's. Nothing waits to fill a batch: a batch is what
// queued while the previous one was in flight, so a lone comment goes at once.
type batcher struct {
	rdb   redis.UniversalClient
	calls chan *call
	max   int

	once   sync.Once
	stop   chan struct{} // closed by close: the lanes return
	closed sync.Once
	lanes  sync.WaitGroup
}

type call struct {
	keys []string
	args []any
	res  string
	err  error
	done chan struct{}
}

func newBatcher(rdb redis.UniversalClient, lanes, max int) *batcher {
	return &batcher{rdb: rdb, calls: make(chan *call, lanes*max), max: max, stop: make(chan struct{})}
}

// errClosed is a submission after the store was closed (at shutdown, after HTTP
// stopped taking requests, so no citizen sees it).
var errClosed = errors.New("store: intake closed")

// start runs the lanes, on first use: each gathers what is queued and sends it as
// one pipeline, so several batches can be in flight at once. They run until close.
func (b *batcher) start(lanes int) {
	b.once.Do(func() {
		b.lanes.Add(lanes)
		for i := 0; i < lanes; i++ {
			go func() { defer b.lanes.Done(); b.lane() }()
		}
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

// send runs one batch. It uses its own context: one caller giving up must not
// cancel the others' comments half-way through a pipeline.
func (b *batcher) send(batch []*call) {
	ctx := context.Background()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = submitScript.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var retry []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, i) // not run: safe to run again
			continue
		}
		batch[i].res, batch[i].err = text(cmd)
	}
	if len(retry) > 0 {
		// First use on this server, or a restarted one: Run loads the script.
		for _, i := range retry {
			batch[i].res, batch[i].err = text(submitScript.Run(ctx, b.rdb, batch[i].keys, batch[i].args...))
		}
	}
	for _, c := range batch {
		close(c.done)
	}
}

// run queues one script call and waits for its result, or for ctx.
func (b *batcher) run(ctx context.Context, keys []string, args ...any) (string, error) {
	c := &call{keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-b.stop:
		return "", errClosed
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-b.stop:
		// A call queued just as the lanes stopped is never sent.
		select {
		case <-c.done:
			return c.res, c.err
		default:
			return "", errClosed
		}
	case <-ctx.Done():
		// The script may still run: the comment is then stored but this caller
		// gets no receipt, as when a response is lost; its retry with the same
		// Idempotency-Key gets the receipt.
		return "", ctx.Err()
	}
}

// text reads a script's reply, an integer or a string, as a string.
func text(cmd *redis.Cmd) (string, error) {
	v, err := cmd.Result()
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("store: comments: unexpected script reply %T", v)
}
