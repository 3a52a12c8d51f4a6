package store

import (
	"consult/comments"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// settleScript settles a batch of comments (stores them): it acknowledges their entries and
// counts those it acknowledged. An entry delivered to two workers (one claimed it
// from the other) is acknowledged once, so it is counted once. The comment stays in
// the intake stream, which is its record; "stored" is read from the group. The
// counts hash keeps its field name 'accepted' for the stored: it is persisted.
//
//	KEYS[1] counts hash, KEYS[2] intake stream
//	ARGV[1] group, then the entry ids
//	returns the number newly stored
var settleScript = redis.NewScript(`
local n = redis.call('XACK', KEYS[2], ARGV[1], unpack(ARGV, 2))
if n > 0 then redis.call('HINCRBY', KEYS[1], 'accepted', n) end
return n
`)

// deadScript moves a poison entry to the dead-letter stream with the reason, marks
// its receipt rejected, and acknowledges it; if this acknowledged it (no other
// worker settled it meanwhile) it counts it rejected: every stream entry counts
// once, as stored or rejected (see comments.Counts).
//
//	KEYS[1] dead stream, KEYS[2] receipts hash, KEYS[3] counts hash, KEYS[4] intake stream
//	ARGV[1] group, ARGV[2] entry id, ARGV[3] code (may be empty), ARGV[4] reason,
//	ARGV[5] the entry's fields as JSON
//	returns 1 if dead-lettered, 0 if already settled
var deadScript = redis.NewScript(`
if redis.call('XACK', KEYS[4], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], 'rejected', 1)
local cur = ARGV[3] ~= '' and redis.call('HGET', KEYS[2], ARGV[3])
if cur and string.sub(cur, 1, 2) ~= 'r|' then
  redis.call('HSET', KEYS[2], ARGV[3], 'r|' .. cur)
end
redis.call('XADD', KEYS[1], '*', 'entry', ARGV[2], 'code', ARGV[3], 'reason', ARGV[4], 'fields', ARGV[5])
return 1
`)

// WorkerConfig tunes a Worker; zero values take the defaults in brackets.
type WorkerConfig struct {
	Consumer      string        // this worker's name in the group (required, unique per process)
	Batch         int64         // entries read per stream per round [500]
	Poll          time.Duration // wait when no read came back full [100ms]
	ClaimEvery    time.Duration // how often to look for entries a dead worker left [5s]
	ClaimIdle     time.Duration // how long an entry must be pending to be claimed [30s]
	MaxDeliveries int64         // deliveries before an entry is dead-lettered [5]
	Now           func() time.Time
	Logger        *slog.Logger
}

// Worker turns queued submissions into stored comments. Several workers, in one
// process or many, share the work through one consumer group per draft stream.
type Worker struct {
	rdb redis.UniversalClient
	cfg WorkerConfig

	groups    sync.Map // draft id -> struct{}: group known to exist
	processed atomic.Int64
	lagMs     atomic.Int64
	// beforeAck, when set (tests only), runs after an entry is read and before it
	// is stored; returning an error stops the worker as a crash would.
	beforeAck func(id string) error
}

// NewWorker returns a Worker on rdb.
func NewWorker(rdb redis.UniversalClient, cfg WorkerConfig) *Worker {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.ClaimEvery <= 0 {
		cfg.ClaimEvery = 5 * time.Second
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = 30 * time.Second
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{rdb: rdb, cfg: cfg}
}

// Stats returns how many entries this worker processed and the age of the last
// one when it was processed: the queue's lag.
func (w *Worker) Stats() (processed int64, lag time.Duration) {
	return w.processed.Load(), time.Duration(w.lagMs.Load()) * time.Millisecond
}

// Run processes entries until ctx is cancelled. Entries read but not yet stored when
// it stops stay pending, for this or another worker to claim.
func (w *Worker) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastClaim := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		full, err := w.round(ctx, w.cfg.Now().Sub(lastClaim) >= w.cfg.ClaimEvery)
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, errStopped) {
				return err
			}
			w.cfg.Logger.Warn("comment worker round failed", "err", err)
		}
		if w.cfg.Now().Sub(lastClaim) >= w.cfg.ClaimEvery {
			lastClaim = w.cfg.Now()
		}
		// Straight on only while batches come back full (a backlog); otherwise wait,
		// so that reads stay batched under a steady load instead of spinning on a
		// few entries each, which costs Redis more than the intake itself.
		if full {
			timer.Reset(0)
		} else {
			timer.Reset(w.cfg.Poll)
		}
	}
}

var errStopped = errors.New("store: worker stopped by hook")

// round reads every active stream once (and claims stale entries when claim is set)
// and reports whether any read came back full, i.e. more may be waiting.
func (w *Worker) round(ctx context.Context, claim bool) (bool, error) {
	ids, err := w.rdb.ZRange(ctx, activeSet, 0, -1).Result()
	if err != nil {
		return false, fmt.Errorf("store: worker: active: %w", err)
	}
	full := false
	for _, id := range ids {
		if err := w.ensureGroup(ctx, id); err != nil {
			return full, err
		}
		var msgs []redis.XMessage
		if claim {
			msgs, err = w.claim(ctx, id)
			if err != nil {
				return full, err
			}
		}
		streams, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: w.cfg.Consumer, Streams: []string{intakeStream(id), ">"},
			Count: w.cfg.Batch, Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if redis.HasErrorPrefix(err, "NOGROUP") {
				w.groups.Delete(id) // the stream was removed or replaced: make the group again
			}
			return full, fmt.Errorf("store: worker: read %s: %w", id, err)
		}
		for _, st := range streams {
			msgs = append(msgs, st.Messages...)
		}
		if err := w.process(ctx, id, msgs); err != nil {
			return full, err
		}
		full = full || int64(len(msgs)) >= w.cfg.Batch
		if len(msgs) == 0 && claim {
			w.retire(ctx, id)
		}
	}
	return full, nil
}

func (w *Worker) ensureGroup(ctx context.Context, id string) error {
	if _, ok := w.groups.Load(id); ok {
		return nil
	}
	err := w.rdb.XGroupCreateMkStream(ctx, intakeStream(id), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("store: worker: group %s: %w", id, err)
	}
	w.groups.Store(id, struct{}{})
	return nil
}

// claim takes over entries another worker read and never acknowledged; those
// delivered too often go to the dead-letter stream instead.
func (w *Worker) claim(ctx context.Context, id string) ([]redis.XMessage, error) {
	msgs, _, err := w.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: intakeStream(id), Group: group, Consumer: w.cfg.Consumer,
		MinIdle: w.cfg.ClaimIdle, Start: "0-0", Count: w.cfg.Batch,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: worker: claim %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	pend, err := w.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: intakeStream(id), Group: group, Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) + w.cfg.Batch,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: worker: pending %s: %w", id, err)
	}
	deliveries := make(map[string]int64, len(pend))
	for _, p := range pend {
		deliveries[p.ID] = p.RetryCount
	}
	keep := msgs[:0]
	for _, m := range msgs {
		if deliveries[m.ID] > w.cfg.MaxDeliveries {
			if err := w.dead(ctx, id, m, fmt.Sprintf("delivered %d times without being settled", deliveries[m.ID])); err != nil {
				return nil, err
			}
			continue
		}
		keep = append(keep, m)
	}
	w.cfg.Logger.Info("claimed pending comments", "draft", id, "count", len(keep))
	return keep, nil
}

// process settles a batch of entries with one script call: one round trip per
// batch, and no copy of the comment (the stream keeps it).
func (w *Worker) process(ctx context.Context, id string, msgs []redis.XMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	now := w.cfg.Now()
	var newest int64
	args := make([]any, 0, 1+len(msgs))
	args = append(args, group)
	for _, m := range msgs {
		if w.beforeAck != nil {
			if err := w.beforeAck(m.ID); err != nil {
				return errStopped
			}
		}
		_, ms, reason := check(id, m)
		if reason != "" {
			if err := w.dead(ctx, id, m, reason); err != nil {
				return err
			}
			continue
		}
		newest = max(newest, ms)
		args = append(args, m.ID)
	}
	if len(args) == 1 {
		return nil
	}
	keys := []string{countsHash(id), intakeStream(id)}
	if err := settleScript.Run(ctx, w.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("store: worker: settle %s: %w", id, err)
	}
	w.processed.Add(int64(len(args) - 1))
	w.lagMs.Store(max(0, now.UnixMilli()-newest))
	return nil
}

// check says whether a stream entry is a comment the intake wrote, cheaply: the
// intake built it, so a full decode belongs to reading, not to every settlement.
func check(draftID string, m redis.XMessage) (code string, receivedMs int64, reason string) {
	payload, _ := m.Values["c"].(string)
	ms, ok := entryTime(m.ID)
	if payload == "" || !ok {
		return "", 0, "malformed entry: no comment"
	}
	// Not a full JSON check: the intake wrote it, and reading decodes it anyway.
	rest, ok := strings.CutPrefix(payload, entryPrefix)
	if !ok {
		return "", 0, "malformed entry: not a comment of format version " + strconv.Itoa(entryVersion)
	}
	code, rest, _ = strings.Cut(rest, `"`)
	if _, _, ok := comments.ParseCode(code); !ok {
		return "", 0, "malformed entry: bad receipt code"
	}
	if !strings.HasPrefix(rest, `,"draft_id":"`+draftID+`"`) {
		return "", 0, "malformed entry: comment JSON not for this draft"
	}
	return code, ms, ""
}

// entryPrefix starts every entry's JSON (see entry).
var entryPrefix = `{"v":` + strconv.Itoa(entryVersion) + `,"code":"`

// decode turns a stream entry into a comment, without its personal data (kept
// apart: see piiHash), or says why it cannot be one.
func decode(draftID string, m redis.XMessage) (comments.Comment, string) {
	code, ms, reason := check(draftID, m)
	if reason != "" {
		return comments.Comment{}, reason
	}
	payload := m.Values["c"].(string)
	var e entry
	if err := json.Unmarshal([]byte(payload), &e); err != nil || e.DraftID != draftID {
		return comments.Comment{}, "malformed comment JSON"
	}
	dup, _ := m.Values["dup"].(string)
	// The digest is not stored: it is a function of what is (see comments.Digest).
	return comments.Comment{Code: code, Entry: m.ID, DraftID: e.DraftID, Section: e.Section, Body: e.Body,
		Category: e.Category, PublishName: e.PublishName, ReceivedAt: time.UnixMilli(ms).UTC(),
		SHA256: comments.Digest(code, time.UnixMilli(ms), []byte(payload)), Duplicate: dup == "1"}, ""
}

func (w *Worker) dead(ctx context.Context, id string, m redis.XMessage, reason string) error {
	fields, _ := json.Marshal(m.Values)
	code, _, _ := check(id, m)
	keys := []string{deadStream(id), receiptsHash(id), countsHash(id), intakeStream(id)}
	n, err := deadScript.Run(ctx, w.rdb, keys, group, m.ID, code, reason, fields).Int()
	if err != nil {
		return fmt.Errorf("store: worker: dead-letter %s %s: %w", id, m.ID, err)
	}
	if n == 0 {
		return nil // another worker settled it meanwhile
	}
	w.cfg.Logger.Warn("comment moved to dead-letter stream", "draft", id, "entry", m.ID, "code", code, "reason", reason)
	return nil
}

// retire drops a draft from the active set once its window is closed and every
// receipt is processed, so that workers stop polling its stream.
func (w *Worker) retire(ctx context.Context, id string) {
	closed, err := windowScript.Run(ctx, w.rdb, []string{draftHash(id)}).Int()
	if err != nil || closed != 1 {
		return
	}
	if c, err := readCounts(ctx, w.rdb, id); err == nil && c.Settled() {
		w.rdb.ZRem(ctx, activeSet, id)
	}
}
