package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
)

// draftSource is what the intake needs from the drafts package.
type draftSource interface {
	Get(ctx context.Context, id string) (drafts.Draft, error)
	ByRef(ctx context.Context, ref int64) (string, error)
}

// Comments takes comments in and reads them back.
type Comments struct {
	rdb    redis.UniversalClient
	drafts draftSource
	// IdempotencyTTL is how long a retried submission gets the first receipt.
	IdempotencyTTL time.Duration

	accepted, rejected atomic.Int64
	active             sync.Map // draft id -> struct{}: already in activeSet
	batch              *batcher
}

// intakeLanes is how many intake pipelines may be in flight at once, and
// intakeBatch the most scripts one of them carries.
const intakeLanes, intakeBatch = 16, 128

// NewStore returns a Comments on rdb, which it never dials itself.
func NewComments(rdb redis.UniversalClient, ds draftSource) *Comments {
	return &Comments{rdb: rdb, drafts: ds, IdempotencyTTL: 24 * time.Hour, batch: newBatcher(rdb, intakeLanes, intakeBatch)}
}

// submitScript issues a receipt for one comment if the window is open, deciding by
// the Redis server's clock so that no replica's clock and no race at the deadline
// decide. The receipt record maps the code to its stream entry: "q|<entry id>|<section>",
// which a dead-letter turns into "r|…"; whether a comment is accepted is read from
// the consumer group (see groupState), so settling a batch writes no per-comment key.
// The idempotency key and its arguments come last and only when the client sent a
// key: every argument is a Lua string made on each call, the payload among them.
//
//	KEYS[1] draft hash, KEYS[2] intake stream, KEYS[3] receipts hash, [KEYS[4] idempotency key]
//	ARGV[1] code, ARGV[2] comment JSON, ARGV[3] section anchor,
//	[ARGV[4] idempotency TTL (s), ARGV[5] sha256, ARGV[6] content hash]
//	returns received_ms, or on a retry the first "code|received_ms|sha256|content hash"
//	| error "NOT_FOUND" | "WINDOW_NOT_OPEN" | "WINDOW_CLOSED"
var submitScript = redis.NewScript(`
local idem = KEYS[4]
if idem then
  local prev = redis.call('GET', idem)
  if prev then return prev end
end
local w = redis.call('HMGET', KEYS[1], 'opens_ms', 'closes_ms')
if not w[1] then return redis.error_reply('NOT_FOUND') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(w[1]) then return redis.error_reply('WINDOW_NOT_OPEN') end
if now >= tonumber(w[2]) then return redis.error_reply('WINDOW_CLOSED') end
local id = redis.call('XADD', KEYS[2], '*', 'code', ARGV[1], 'recv', now, 'c', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], 'q|' .. id .. '|' .. ARGV[3])
if idem then
  redis.call('SET', idem, ARGV[1] .. '|' .. now .. '|' .. ARGV[5] .. '|' .. ARGV[6], 'EX', ARGV[4])
end
return now
`)

// windowScript tells whether the window is closed by the Redis server's clock.
//
//	KEYS[1] draft hash
//	returns 1 closed | 0 not closed | error "NOT_FOUND"
var windowScript = redis.NewScript(`
local c = redis.call('HGET', KEYS[1], 'closes_ms')
if not c then return redis.error_reply('NOT_FOUND') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(c) then return 1 end
return 0
`)

// record is the comment as written into the intake stream, which is the durable
// record of every comment: workers settle entries, they never copy or trim them.
// The code and the received time sit beside it in the entry: the code is chosen
// before the script runs and the time is Redis's, stamped inside it.
type record struct {
	DraftID     string            `json:"draft_id"`
	Section     string            `json:"section"`
	Body        string            `json:"body"`
	Name        string            `json:"name,omitempty"`
	Contact     string            `json:"contact,omitempty"`
	Category    comments.Category `json:"category"`
	PublishName bool              `json:"publish_name"`
}

// Submit validates a submission and queues it durably. The receipt is returned only
// after Redis has stored the entry. Errors: *comments.ValidationError, comments.ErrWindowClosed,
// comments.ErrWindowNotOpen, comments.ErrIdempotencyMismatch, drafts.ErrNotFound.
func (s *Comments) Submit(ctx context.Context, sub comments.Submission) (comments.Receipt, error) {
	d, err := s.drafts.Get(ctx, sub.DraftID)
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", sub.DraftID, err)
	}
	comments.Normalize(&sub)
	if err := comments.Validate(sub, d); err != nil {
		s.rejected.Add(1)
		return comments.Receipt{}, err
	}
	code, err := comments.NewCode(d.Ref)
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
	}
	payload, err := json.Marshal(record{DraftID: d.ID, Section: sub.Section, Body: sub.Body, Name: sub.Name,
		Contact: sub.Contact, Category: sub.Category, PublishName: sub.PublishName})
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
	}
	// A retry with the same idempotency key must repeat the same comment; the code
	// differs on each attempt, so the check is on the payload alone.
	csum := sha256.Sum256(payload)
	contentHash := hex.EncodeToString(csum[:8])

	if _, seen := s.active.Load(d.ID); !seen {
		// Workers find intake streams through this set; once per process and draft
		// keeps it off the request's path after the first comment.
		if err := s.rdb.ZAdd(ctx, activeSet, redis.Z{Score: float64(d.ClosesAt.UnixMilli()), Member: d.ID}).Err(); err != nil {
			return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
		}
		s.active.Store(d.ID, struct{}{})
	}
	sha := comments.Digest(code, payload)
	keys := []string{draftHash(d.ID), intakeStream(d.ID), receiptsHash(d.ID)}
	args := []any{code, payload, sub.Section}
	if sub.IdempotencyKey != "" {
		keys = append(keys, idemKey(d.ID, sub.IdempotencyKey))
		args = append(args, int(s.IdempotencyTTL/time.Second), sha, contentHash)
	}
	s.batch.start(intakeLanes)
	res, err := s.batch.run(ctx, keys, args...)
	if err != nil {
		switch {
		case isScriptError(err, "WINDOW_CLOSED"):
			s.rejected.Add(1)
			return comments.Receipt{}, comments.ErrWindowClosed
		case isScriptError(err, "WINDOW_NOT_OPEN"):
			s.rejected.Add(1)
			return comments.Receipt{}, comments.ErrWindowNotOpen
		case isScriptError(err, "NOT_FOUND"):
			return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, drafts.ErrNotFound)
		}
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
	}
	if ms, err := strconv.ParseInt(res, 10, 64); err == nil {
		s.accepted.Add(1)
		return comments.Receipt{Code: code, DraftID: d.ID, Section: sub.Section, ReceivedAt: time.UnixMilli(ms).UTC(), SHA256: sha}, nil
	}
	// A retry: the first receipt, if the comment is the same.
	parts := strings.Split(res, "|")
	if len(parts) != 4 {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: unexpected reply %q", d.ID, res)
	}
	if parts[3] != contentHash {
		return comments.Receipt{}, comments.ErrIdempotencyMismatch
	}
	ms, _ := strconv.ParseInt(parts[1], 10, 64)
	return comments.Receipt{Code: parts[0], DraftID: d.ID, Section: sub.Section, ReceivedAt: time.UnixMilli(ms).UTC(), SHA256: parts[2]}, nil
}

// Close stops the intake's pipelines, after the batches in flight are answered.
// Call it once HTTP has stopped taking requests; Submit fails afterwards.
func (s *Comments) Close() { s.batch.close() }

// Stats returns how many submissions this process took in and refused.
func (s *Comments) Stats() (accepted, rejected int64) { return s.accepted.Load(), s.rejected.Load() }

// Lookup returns the status of a receipt, or comments.ErrNotFound. It needs only the code:
// the code starts with the draft's ref.
func (s *Comments) Lookup(ctx context.Context, code string) (comments.ReceiptStatus, error) {
	code, ref, ok := comments.ParseCode(code)
	if !ok {
		return comments.ReceiptStatus{}, comments.ErrNotFound
	}
	id, err := s.drafts.ByRef(ctx, ref)
	if errors.Is(err, drafts.ErrNotFound) {
		return comments.ReceiptStatus{}, comments.ErrNotFound
	}
	if err != nil {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: %w", code, err)
	}
	v, err := s.rdb.HGet(ctx, receiptsHash(id), code).Result()
	if errors.Is(err, redis.Nil) {
		return comments.ReceiptStatus{}, comments.ErrNotFound
	}
	if err != nil {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: %w", code, err)
	}
	mark, entry, section, ok := parseRecord(v)
	if !ok {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: malformed record %q", code, v)
	}
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(id), entry, entry, 1).Result()
	if err != nil {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: %w", code, err)
	}
	if len(msgs) != 1 {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: entry %s missing from the record", code, entry)
	}
	c, reason := decode(id, msgs[0])
	if reason != "" {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: %s", code, reason)
	}
	g, err := s.group(ctx, id, entry, entry)
	if err != nil {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: %w", code, err)
	}
	return comments.ReceiptStatus{Code: code, DraftID: id, Section: section, Status: g.status(mark, entry),
		ReceivedAt: c.ReceivedAt, SHA256: c.SHA256}, nil
}

// parseRecord splits a receipt record, "q|<entry id>|<section>" or "r|…".
func parseRecord(v string) (mark, entry, section string, ok bool) {
	f := strings.SplitN(v, "|", 3)
	if len(f) != 3 || (f[0] != "q" && f[0] != "r") {
		return "", "", "", false
	}
	return f[0], f[1], f[2], true
}

// groupState is how far the workers' consumer group has come over a range of
// entries: an entry is accepted once it was delivered and is no longer pending
// (the settle script acknowledges only what it accepted).
type groupState struct {
	lastDelivered string
	pending       map[string]bool
}

func (g groupState) status(mark, entry string) comments.Status {
	switch {
	case mark == "r":
		return comments.StatusRejected
	case g.pending[entry] || compareIDs(entry, g.lastDelivered) > 0:
		return comments.StatusQueued
	}
	return comments.StatusAccepted
}

// group reads the consumer group's progress over the entries first..last.
func (s *Comments) group(ctx context.Context, draftID, first, last string) (groupState, error) {
	g := groupState{lastDelivered: "0-0", pending: map[string]bool{}}
	infos, err := s.rdb.XInfoGroups(ctx, intakeStream(draftID)).Result()
	if err != nil {
		return g, fmt.Errorf("group %s: %w", draftID, err)
	}
	for _, in := range infos {
		if in.Name == group {
			g.lastDelivered = in.LastDeliveredID
		}
	}
	if g.lastDelivered == "0-0" {
		return g, nil // no worker has read yet (or no group): everything is queued
	}
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: intakeStream(draftID), Group: group,
		Start: first, End: last, Count: 100000}).Result()
	if err != nil {
		return g, fmt.Errorf("pending %s: %w", draftID, err)
	}
	for _, p := range pend {
		g.pending[p.ID] = true
	}
	return g, nil
}

// compareIDs orders stream ids ("ms-seq").
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ami, _ := strconv.ParseUint(am, 10, 64)
	bmi, _ := strconv.ParseUint(bm, 10, 64)
	if ami != bmi {
		if ami < bmi {
			return -1
		}
		return 1
	}
	asi, _ := strconv.ParseUint(as, 10, 64)
	bsi, _ := strconv.ParseUint(bs, 10, 64)
	switch {
	case asi < bsi:
		return -1
	case asi > bsi:
		return 1
	}
	return 0
}

// comments.Counts returns a draft's intake counters.
func (s *Comments) Counts(ctx context.Context, draftID string) (comments.Counts, error) {
	return readCounts(ctx, s.rdb, draftID)
}

func readCounts(ctx context.Context, rdb redis.UniversalClient, draftID string) (comments.Counts, error) {
	// Every entry of the intake stream is a receipt issued (or, rarely, something
	// else that workers dead-letter and count as rejected), so its length is the
	// number submitted: one write fewer per comment.
	var xlen *redis.IntCmd
	var hm *redis.SliceCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, intakeStream(draftID))
		hm = p.HMGet(ctx, countsHash(draftID), "accepted", "rejected")
		return nil
	})
	v := hm.Val()
	if err != nil {
		return comments.Counts{}, fmt.Errorf("store: comments: counts %s: %w", draftID, err)
	}
	n := func(x any) int64 {
		str, _ := x.(string)
		i, _ := strconv.ParseInt(str, 10, 64)
		return i
	}
	return comments.Counts{Submitted: xlen.Val(), Accepted: n(v[0]), Rejected: n(v[1])}, nil
}

// WindowClosed reports whether the draft's window is closed by the Redis server's
// clock, the one authority on the deadline.
func (s *Comments) WindowClosed(ctx context.Context, draftID string) (bool, error) {
	n, err := windowScript.Run(ctx, s.rdb, []string{draftHash(draftID)}).Int()
	if isScriptError(err, "NOT_FOUND") {
		return false, fmt.Errorf("store: comments: window %s: %w", draftID, drafts.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("store: comments: window %s: %w", draftID, err)
	}
	return n == 1, nil
}

// Page returns up to limit comments received after the stream position after
// ("" = from the start), in the order Redis received them, each with its status,
// and the position to continue from ("" when there is no more).
func (s *Comments) Page(ctx context.Context, draftID, after string, limit int64) ([]comments.Comment, string, error) {
	start := "-"
	if after != "" {
		if !validStreamID(after) {
			return nil, "", comments.ErrBadCursor
		}
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(draftID), start, "+", limit).Result()
	if err != nil {
		return nil, "", fmt.Errorf("store: comments: page %s: %w", draftID, err)
	}
	cs := make([]comments.Comment, 0, len(msgs))
	codes := make([]string, 0, len(msgs))
	for _, m := range msgs {
		c, reason := decode(draftID, m)
		if reason != "" {
			continue // not a comment (dead-lettered when a worker saw it)
		}
		cs = append(cs, c)
		codes = append(codes, c.Code)
	}
	if len(codes) > 0 {
		recs, err := s.rdb.HMGet(ctx, receiptsHash(draftID), codes...).Result()
		if err != nil {
			return nil, "", fmt.Errorf("store: comments: page %s: %w", draftID, err)
		}
		g, err := s.group(ctx, draftID, msgs[0].ID, msgs[len(msgs)-1].ID)
		if err != nil {
			return nil, "", fmt.Errorf("store: comments: page %s: %w", draftID, err)
		}
		for i, v := range recs {
			str, _ := v.(string)
			mark, entry, _, ok := parseRecord(str)
			if !ok {
				mark = "r" // a receipt record is written with every entry the intake adds
			}
			cs[i].Status = g.status(mark, entry)
		}
	}
	next := ""
	if int64(len(msgs)) == limit && limit > 0 {
		next = msgs[len(msgs)-1].ID
	}
	return cs, next, nil
}

// All returns every accepted comment of a draft in the order received. It holds
// them all in memory: for tests and small drafts; the digest uses Each.
func (s *Comments) All(ctx context.Context, draftID string) ([]comments.Comment, error) {
	var out []comments.Comment
	err := s.Each(ctx, draftID, "", func(c comments.Comment) error { out = append(out, c); return nil })
	return out, err
}

// Each calls fn with every accepted comment of a draft received up to the
// stream position until ("" = everything so far), in the order received, reading
// a page at a time: memory stays that of one page whatever the draft's size.
// It stops at fn's first error and returns it.
func (s *Comments) Each(ctx context.Context, draftID, until string, fn func(comments.Comment) error) error {
	if until != "" && !validStreamID(until) {
		return comments.ErrBadCursor
	}
	after := ""
	for {
		cs, next, err := s.Page(ctx, draftID, after, eachPage)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if until != "" && compareIDs(c.Entry, until) > 0 {
				return nil
			}
			if c.Status != comments.StatusAccepted {
				continue
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// eachPage is how many entries Each reads per round trip.
const eachPage = 1000

// Head returns the position of the newest entry of a draft's intake stream, or
// "0-0" when it has none: the end of the range a digest covers, so that the same
// digest can be rebuilt later, byte for byte, while comments keep arriving.
func (s *Comments) Head(ctx context.Context, draftID string) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, intakeStream(draftID), "+", "-", 1).Result()
	if err != nil {
		return "", wrap("comments: head "+draftID, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

func isScriptError(err error, code string) bool {
	var re redis.Error
	// Redis 7 prefixes a script's error_reply with "ERR " unless it starts with a
	// known error code; accept both.
	return errors.As(err, &re) && strings.TrimPrefix(re.Error(), "ERR ") == code
}
