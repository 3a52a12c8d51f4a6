package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	cfg    IntakeConfig

	issued, refused, full atomic.Int64
	active                sync.Map // draft id -> struct{}: already in activeSet
	batch                 *batcher
}

// IntakeConfig tunes the intake; zero values take the defaults in brackets.
type IntakeConfig struct {
	// IdempotencyTTL is how long a retried submission gets the first receipt [24h].
	IdempotencyTTL time.Duration
	// Timeout bounds a submission whose context has no deadline [3s]: past it the
	// comment is refused by Redis's clock and the caller told so.
	Timeout time.Duration
	// MaxComments and MaxBytes cap what one draft stores when the draft sets no
	// cap of its own [2,000,000 comments; 4 GiB of text]: a flood on one draft
	// ends in refusals, never in a Redis too full for the others.
	MaxComments, MaxBytes int64
	// CapsOff switches the per-draft caps off, for load tests (CONSULT_LIMITS=off).
	CapsOff bool
	// Lanes is how many intake pipelines may be in flight at once [4]. Fewer
	// lanes make larger batches, and a batch costs Redis a fixed part (the
	// script call, the window and the records read and written once) plus a
	// part per comment: against 16 lanes, 4 took in about a tenth more at a
	// lower p99 on the 2-core bench machine (make bench, same run conditions).
	Lanes  int
	Logger *slog.Logger
}

// intakeBatch is the most comments one intake pipeline carries.
const intakeBatch = 256

// NewComments returns a Comments on rdb, which it never dials itself.
func NewComments(rdb redis.UniversalClient, ds draftSource, cfg IntakeConfig) *Comments {
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MaxComments <= 0 {
		cfg.MaxComments = 2_000_000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 4 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 4
	}
	s := &Comments{rdb: rdb, drafts: ds, cfg: cfg}
	s.batch = newBatcher(rdb, cfg.Lanes, intakeBatch, cfg.Logger)
	s.batch.ttl = cfg.IdempotencyTTL
	s.batch.maxComments, s.batch.maxBytes = cfg.MaxComments, cfg.MaxBytes
	if cfg.CapsOff {
		s.batch.maxComments, s.batch.maxBytes = -1, 0 // the script's "caps off"
	}
	return s
}

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

// Submit validates a submission and stores it durably. The receipt is returned
// only after Redis has stored the comment, and a comment is stored once, however
// often the call reaches Redis. Errors: *comments.ValidationError,
// comments.ErrWindowClosed, comments.ErrWindowNotOpen,
// comments.ErrIdempotencyMismatch, comments.ErrDraftFull, drafts.ErrNotFound, and
// errors marked unavailable (see unavailableError) when Redis did not answer in
// time: then no receipt was given, and the comment is stored at most once.
func (s *Comments) Submit(ctx context.Context, sub comments.Submission) (comments.Receipt, error) {
	d, err := s.drafts.Get(ctx, sub.DraftID)
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", sub.DraftID, err)
	}
	comments.Normalize(&sub)
	if err := comments.Validate(sub, d); err != nil {
		s.refused.Add(1)
		return comments.Receipt{}, err
	}
	code, err := comments.NewCode(d.Ref)
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
	}
	sub.DraftID = d.ID
	p, err := newPending(sub, code)
	if err != nil {
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, err)
	}
	if sub.IdempotencyKey != "" {
		p.idemKey = idemKey(d.ID, sub.IdempotencyKey)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	p.notAfter = deadline

	if _, seen := s.active.Load(d.ID); !seen {
		// Workers find intake streams through this set; once per process and draft
		// keeps it off the request's path after the first comment.
		if err := s.rdb.ZAdd(ctx, activeSet, redis.Z{Score: float64(d.ClosesAt.UnixMilli()), Member: d.ID}).Err(); err != nil {
			return comments.Receipt{}, wrap("comments: submit "+d.ID, err)
		}
		s.active.Store(d.ID, struct{}{})
	}
	s.batch.start(s.cfg.Lanes)
	c := &call{draftID: d.ID, p: p, keys: [6]string{draftHash(d.ID), intakeStream(d.ID), receiptsHash(d.ID),
		piiHash(d.ID), countsHash(d.ID), dupSet(d.ID)}}
	o, err := s.batch.run(ctx, c)
	if err != nil {
		return comments.Receipt{}, wrap("comments: submit "+d.ID, err)
	}
	switch o.kind {
	case "OK", "DONE":
		s.issued.Add(1)
		at := time.UnixMilli(o.rec.receivedMs).UTC()
		return comments.Receipt{Code: code, DraftID: d.ID, Section: sub.Section, ReceivedAt: at,
			SHA256: comments.Digest(code, at, p.entry)}, nil
	case "IDEM":
		if o.content != p.content {
			return comments.Receipt{}, comments.ErrIdempotencyMismatch
		}
		// The first receipt's digest covers the first attempt's entry (its code
		// and salt differ from this one's): read it back; a retry is rare.
		first, err := s.entry(ctx, d.ID, o.rec.entry)
		if err != nil {
			return comments.Receipt{}, wrap("comments: submit "+d.ID, err)
		}
		return comments.Receipt{Code: o.code, DraftID: d.ID, Section: first.Section,
			ReceivedAt: first.ReceivedAt, SHA256: first.SHA256}, nil
	}
	switch o.reason {
	case "WINDOW_CLOSED":
		s.refused.Add(1)
		return comments.Receipt{}, comments.ErrWindowClosed
	case "WINDOW_NOT_OPEN":
		s.refused.Add(1)
		return comments.Receipt{}, comments.ErrWindowNotOpen
	case "NOT_FOUND":
		return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: %w", d.ID, drafts.ErrNotFound)
	case "FULL":
		if s.full.Add(1)%1000 == 1 {
			s.cfg.Logger.Warn("intake: draft reached its storage cap; comments refused", "draft", d.ID, "refused_so_far", s.full.Load())
		}
		return comments.Receipt{}, comments.ErrDraftFull
	case "LATE":
		// Redis ran the script after this caller's deadline: nothing was stored.
		return comments.Receipt{}, wrap("comments: submit "+d.ID, context.DeadlineExceeded)
	}
	return comments.Receipt{}, fmt.Errorf("store: comments: submit %s: unexpected outcome %q", d.ID, o.reason)
}

// Close stops the intake's pipelines, after the batches in flight are answered.
// Call it once HTTP has stopped taking requests; Submit fails afterwards.
func (s *Comments) Close() { s.batch.close() }

// IntakeStats are this process's intake counters since it started.
type IntakeStats struct {
	Issued      int64 // receipts given
	Refused     int64 // submissions refused: invalid, or outside the window
	Full        int64 // refused because the draft reached its storage cap
	Undelivered int64 // stored after the caller stopped waiting: no receipt delivered
	Shed        int64 // refused at once because the intake's queue was full
}

// Stats returns this process's intake counters.
func (s *Comments) Stats() IntakeStats {
	return IntakeStats{Issued: s.issued.Load(), Refused: s.refused.Load(), Full: s.full.Load(), Undelivered: s.batch.undelivered.Load(), Shed: s.batch.shed.Load()}
}

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
		return comments.ReceiptStatus{}, wrap("comments: lookup "+code, err)
	}
	rec, ok := parseRecord(v)
	if !ok {
		return comments.ReceiptStatus{}, fmt.Errorf("store: comments: lookup %s: malformed record %q", code, v)
	}
	c, err := s.entry(ctx, id, rec.entry)
	if err != nil {
		return comments.ReceiptStatus{}, wrap("comments: lookup "+code, err)
	}
	g, err := s.group(ctx, id, rec.entry, rec.entry)
	if err != nil {
		return comments.ReceiptStatus{}, wrap("comments: lookup "+code, err)
	}
	return comments.ReceiptStatus{Code: code, DraftID: id, Section: c.Section, Status: g.status(rec),
		ReceivedAt: c.ReceivedAt, SHA256: c.SHA256}, nil
}

// Settled reports whether every comment of a draft up to the stream position
// until has been processed by the workers (stored or dead-lettered), whatever
// arrived after it: an interim digest covering up to until may then be built,
// while comments keep coming.
func (s *Comments) Settled(ctx context.Context, draftID, until string) (bool, error) {
	if until == "" || until == "0-0" {
		return true, nil
	}
	if !validStreamID(until) {
		return false, comments.ErrBadCursor
	}
	g, err := s.group(ctx, draftID, "-", until)
	if err != nil {
		return false, wrap("comments: settled "+draftID, err)
	}
	return compareIDs(g.lastDelivered, until) >= 0 && len(g.pending) == 0, nil
}

// entry reads one comment of the record, without its personal data.
func (s *Comments) entry(ctx context.Context, draftID, id string) (comments.Comment, error) {
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(draftID), id, id, 1).Result()
	if err != nil {
		return comments.Comment{}, err
	}
	if len(msgs) != 1 {
		return comments.Comment{}, fmt.Errorf("entry %s missing from the record", id)
	}
	c, reason := decode(draftID, msgs[0])
	if reason != "" {
		return comments.Comment{}, fmt.Errorf("entry %s: %s", id, reason)
	}
	return c, nil
}

// groupState is how far the workers' consumer group has come over a range of
// entries: an entry is stored once it was delivered and is no longer pending
// (the settle script acknowledges only what it stored).
type groupState struct {
	lastDelivered string
	pending       map[string]bool
}

func (g groupState) status(r record) comments.Status {
	switch {
	case r.rejected:
		return comments.StatusRejected
	case g.pending[r.entry] || compareIDs(r.entry, g.lastDelivered) > 0:
		return comments.StatusQueued
	}
	return comments.StatusStored
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
	return comments.Counts{Submitted: xlen.Val(), Stored: n(v[0]), Rejected: n(v[1])}, nil
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
		var ok bool
		if start, ok = nextID(after); !ok {
			return nil, "", comments.ErrBadCursor
		}
		if start == "" {
			return nil, "", nil // after the largest id there can be: nothing
		}
	}
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(draftID), start, "+", limit).Result()
	if err != nil {
		return nil, "", wrap("comments: page "+draftID, err)
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
		// The receipt records give each comment's status, the personal-data hash
		// its name and contact (absent once erased, or never given).
		var recs, pers *redis.SliceCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			recs = p.HMGet(ctx, receiptsHash(draftID), codes...)
			pers = p.HMGet(ctx, piiHash(draftID), codes...)
			return nil
		})
		if err != nil {
			return nil, "", wrap("comments: page "+draftID, err)
		}
		g, err := s.group(ctx, draftID, msgs[0].ID, msgs[len(msgs)-1].ID)
		if err != nil {
			return nil, "", wrap("comments: page "+draftID, err)
		}
		for i, v := range recs.Val() {
			str, _ := v.(string)
			rec, ok := parseRecord(str)
			if !ok {
				// A receipt record is written with every entry the intake adds.
				rec = record{rejected: true, entry: cs[i].Entry}
			}
			cs[i].Status = g.status(rec)
		}
		for i, v := range pers.Val() {
			if str, _ := v.(string); str != "" {
				var p personal
				if json.Unmarshal([]byte(str), &p) == nil {
					cs[i].Name, cs[i].Contact = p.Name, p.Contact
				}
			}
		}
	}
	next := ""
	if int64(len(msgs)) == limit && limit > 0 {
		next = msgs[len(msgs)-1].ID
	}
	return cs, next, nil
}

// All returns every stored comment of a draft in the order received. It holds
// them all in memory: for tests and small drafts; the digest uses Each.
func (s *Comments) All(ctx context.Context, draftID string) ([]comments.Comment, error) {
	var out []comments.Comment
	err := s.Each(ctx, draftID, "", func(c comments.Comment) error { out = append(out, c); return nil })
	return out, err
}

// Each calls fn with every stored comment of a draft received up to the
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
			if c.Status != comments.StatusStored {
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

// nextID is the first stream id after id, for an inclusive XRANGE start ("" when
// id is the largest there can be). Redis refuses an exclusive start of the
// largest id, so it is not used.
func nextID(id string) (string, bool) {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return "", false
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return "", false
	case q < math.MaxUint64:
		return strconv.FormatUint(m, 10) + "-" + strconv.FormatUint(q+1, 10), true
	case m < math.MaxUint64:
		return strconv.FormatUint(m+1, 10) + "-0", true
	}
	return "", true
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
