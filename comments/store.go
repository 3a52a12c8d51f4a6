package comments

import (
	"context"
	"crypto/rand"
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

	"consult/drafts"
)

// draftSource is what the intake needs from the drafts package.
type draftSource interface {
	Get(ctx context.Context, id string) (drafts.Draft, error)
	ByRef(ctx context.Context, ref int64) (string, error)
}

// Store takes comments in and reads them back.
type Store struct {
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

// NewStore returns a Store on rdb, which it never dials itself.
func NewStore(rdb redis.UniversalClient, ds draftSource) *Store {
	return &Store{rdb: rdb, drafts: ds, IdempotencyTTL: 24 * time.Hour, batch: newBatcher(rdb, intakeLanes, intakeBatch)}
}

// submitScript issues a receipt for one comment if the window is open, deciding by
// the Redis server's clock so that no replica's clock and no race at the deadline
// decide. The receipt record maps the code to its stream entry: "q|<entry id>|<section>",
// which a dead-letter turns into "r|…"; whether a comment is accepted is read from
// the consumer group (see groupState), so settling a batch writes no per-comment key.
//
//	KEYS[1] draft hash, KEYS[2] idempotency key, KEYS[3] intake stream,
//	KEYS[4] receipts hash
//	ARGV[1] idempotency TTL (s), ARGV[2] comment JSON, ARGV[3] code,
//	ARGV[4] sha256 and ARGV[5] content hash (both for the idempotency record), ARGV[6] "1" when an idempotency key is given,
//	ARGV[7] section anchor
//	returns received_ms, or on a retry the first "code|received_ms|sha256|content hash"
//	| error "NOT_FOUND" | "WINDOW_NOT_OPEN" | "WINDOW_CLOSED"
var submitScript = redis.NewScript(`
if ARGV[6] == '1' then
  local prev = redis.call('GET', KEYS[2])
  if prev then return prev end
end
local w = redis.call('HMGET', KEYS[1], 'opens_ms', 'closes_ms')
if not w[1] then return redis.error_reply('NOT_FOUND') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(w[1]) then return redis.error_reply('WINDOW_NOT_OPEN') end
if now >= tonumber(w[2]) then return redis.error_reply('WINDOW_CLOSED') end
local id = redis.call('XADD', KEYS[3], '*', 'code', ARGV[3], 'recv', now, 'c', ARGV[2])
redis.call('HSET', KEYS[4], ARGV[3], 'q|' .. id .. '|' .. ARGV[7])
if ARGV[6] == '1' then
  redis.call('SET', KEYS[2], ARGV[3] .. '|' .. now .. '|' .. ARGV[4] .. '|' .. ARGV[5], 'EX', ARGV[1])
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
	DraftID     string   `json:"draft_id"`
	Section     string   `json:"section"`
	Body        string   `json:"body"`
	Name        string   `json:"name,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Category    Category `json:"category"`
	PublishName bool     `json:"publish_name"`
}

// Digest is the receipt's SHA-256: of the code, a newline and the comment's JSON as
// recorded in the intake stream, so that a receipt binds its code to the exact text.
func Digest(code string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte(code))
	h.Write([]byte{'\n'})
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil))
}

// Submit validates a submission and queues it durably. The receipt is returned only
// after Redis has stored the entry. Errors: *ValidationError, ErrWindowClosed,
// ErrWindowNotOpen, ErrIdempotencyMismatch, drafts.ErrNotFound.
func (s *Store) Submit(ctx context.Context, sub Submission) (Receipt, error) {
	d, err := s.drafts.Get(ctx, sub.DraftID)
	if err != nil {
		return Receipt{}, fmt.Errorf("comments: submit %s: %w", sub.DraftID, err)
	}
	Normalize(&sub)
	if err := Validate(sub, d); err != nil {
		s.rejected.Add(1)
		return Receipt{}, err
	}
	code, err := newCode(d.Ref)
	if err != nil {
		return Receipt{}, fmt.Errorf("comments: submit %s: %w", d.ID, err)
	}
	payload, err := json.Marshal(record{DraftID: d.ID, Section: sub.Section, Body: sub.Body, Name: sub.Name,
		Contact: sub.Contact, Category: sub.Category, PublishName: sub.PublishName})
	if err != nil {
		return Receipt{}, fmt.Errorf("comments: submit %s: %w", d.ID, err)
	}
	// A retry with the same idempotency key must repeat the same comment; the code
	// differs on each attempt, so the check is on the payload alone.
	csum := sha256.Sum256(payload)
	contentHash := hex.EncodeToString(csum[:8])

	if _, seen := s.active.Load(d.ID); !seen {
		// Workers find intake streams through this set; once per process and draft
		// keeps it off the request's path after the first comment.
		if err := s.rdb.ZAdd(ctx, activeSet, redis.Z{Score: float64(d.ClosesAt.UnixMilli()), Member: d.ID}).Err(); err != nil {
			return Receipt{}, fmt.Errorf("comments: submit %s: %w", d.ID, err)
		}
		s.active.Store(d.ID, struct{}{})
	}
	sha := Digest(code, payload)
	useIdem, idemSha := "0", ""
	if sub.IdempotencyKey != "" {
		useIdem, idemSha = "1", sha
	}
	keys := []string{draftHash(d.ID), idemKey(d.ID, sub.IdempotencyKey), intakeStream(d.ID), receiptsHash(d.ID)}
	s.batch.start(intakeLanes)
	res, err := s.batch.run(ctx, keys, int(s.IdempotencyTTL/time.Second), payload, code, idemSha, contentHash, useIdem, sub.Section)
	if err != nil {
		switch {
		case isScriptError(err, "WINDOW_CLOSED"):
			s.rejected.Add(1)
			return Receipt{}, ErrWindowClosed
		case isScriptError(err, "WINDOW_NOT_OPEN"):
			s.rejected.Add(1)
			return Receipt{}, ErrWindowNotOpen
		case isScriptError(err, "NOT_FOUND"):
			return Receipt{}, fmt.Errorf("comments: submit %s: %w", d.ID, drafts.ErrNotFound)
		}
		return Receipt{}, fmt.Errorf("comments: submit %s: %w", d.ID, err)
	}
	if ms, err := strconv.ParseInt(res, 10, 64); err == nil {
		s.accepted.Add(1)
		return Receipt{Code: code, DraftID: d.ID, Section: sub.Section, ReceivedAt: time.UnixMilli(ms).UTC(), SHA256: sha}, nil
	}
	// A retry: the first receipt, if the comment is the same.
	parts := strings.Split(res, "|")
	if len(parts) != 4 {
		return Receipt{}, fmt.Errorf("comments: submit %s: unexpected reply %q", d.ID, res)
	}
	if parts[3] != contentHash {
		return Receipt{}, ErrIdempotencyMismatch
	}
	ms, _ := strconv.ParseInt(parts[1], 10, 64)
	return Receipt{Code: parts[0], DraftID: d.ID, Section: sub.Section, ReceivedAt: time.UnixMilli(ms).UTC(), SHA256: parts[2]}, nil
}

// Close stops the intake's pipelines, after the batches in flight are answered.
// Call it once HTTP has stopped taking requests; Submit fails afterwards.
func (s *Store) Close() { s.batch.close() }

// Stats returns how many submissions this process took in and refused.
func (s *Store) Stats() (accepted, rejected int64) { return s.accepted.Load(), s.rejected.Load() }

// Lookup returns the status of a receipt, or ErrNotFound. It needs only the code:
// the code starts with the draft's ref.
func (s *Store) Lookup(ctx context.Context, code string) (ReceiptStatus, error) {
	code, ref, ok := ParseCode(code)
	if !ok {
		return ReceiptStatus{}, ErrNotFound
	}
	id, err := s.drafts.ByRef(ctx, ref)
	if errors.Is(err, drafts.ErrNotFound) {
		return ReceiptStatus{}, ErrNotFound
	}
	if err != nil {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: %w", code, err)
	}
	v, err := s.rdb.HGet(ctx, receiptsHash(id), code).Result()
	if errors.Is(err, redis.Nil) {
		return ReceiptStatus{}, ErrNotFound
	}
	if err != nil {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: %w", code, err)
	}
	mark, entry, section, ok := parseRecord(v)
	if !ok {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: malformed record %q", code, v)
	}
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(id), entry, entry, 1).Result()
	if err != nil {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: %w", code, err)
	}
	if len(msgs) != 1 {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: entry %s missing from the record", code, entry)
	}
	c, reason := decode(id, msgs[0])
	if reason != "" {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: %s", code, reason)
	}
	g, err := s.group(ctx, id, entry, entry)
	if err != nil {
		return ReceiptStatus{}, fmt.Errorf("comments: lookup %s: %w", code, err)
	}
	return ReceiptStatus{Code: code, DraftID: id, Section: section, Status: g.status(mark, entry),
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

func (g groupState) status(mark, entry string) Status {
	switch {
	case mark == "r":
		return StatusRejected
	case g.pending[entry] || compareIDs(entry, g.lastDelivered) > 0:
		return StatusQueued
	}
	return StatusAccepted
}

// group reads the consumer group's progress over the entries first..last.
func (s *Store) group(ctx context.Context, draftID, first, last string) (groupState, error) {
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

// Counts returns a draft's intake counters.
func (s *Store) Counts(ctx context.Context, draftID string) (Counts, error) {
	return readCounts(ctx, s.rdb, draftID)
}

func readCounts(ctx context.Context, rdb redis.UniversalClient, draftID string) (Counts, error) {
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
		return Counts{}, fmt.Errorf("comments: counts %s: %w", draftID, err)
	}
	n := func(x any) int64 {
		str, _ := x.(string)
		i, _ := strconv.ParseInt(str, 10, 64)
		return i
	}
	return Counts{Submitted: xlen.Val(), Accepted: n(v[0]), Rejected: n(v[1])}, nil
}

// WindowClosed reports whether the draft's window is closed by the Redis server's
// clock, the one authority on the deadline.
func (s *Store) WindowClosed(ctx context.Context, draftID string) (bool, error) {
	n, err := windowScript.Run(ctx, s.rdb, []string{draftHash(draftID)}).Int()
	if isScriptError(err, "NOT_FOUND") {
		return false, fmt.Errorf("comments: window %s: %w", draftID, drafts.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("comments: window %s: %w", draftID, err)
	}
	return n == 1, nil
}

// Page returns up to limit comments received after the stream position after
// ("" = from the start), in the order Redis received them, each with its status,
// and the position to continue from ("" when there is no more).
func (s *Store) Page(ctx context.Context, draftID, after string, limit int64) ([]Comment, string, error) {
	start := "-"
	if after != "" {
		if !validStreamID(after) {
			return nil, "", ErrBadCursor
		}
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, intakeStream(draftID), start, "+", limit).Result()
	if err != nil {
		return nil, "", fmt.Errorf("comments: page %s: %w", draftID, err)
	}
	cs := make([]Comment, 0, len(msgs))
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
			return nil, "", fmt.Errorf("comments: page %s: %w", draftID, err)
		}
		g, err := s.group(ctx, draftID, msgs[0].ID, msgs[len(msgs)-1].ID)
		if err != nil {
			return nil, "", fmt.Errorf("comments: page %s: %w", draftID, err)
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

// All returns every accepted comment of a draft in the order received.
func (s *Store) All(ctx context.Context, draftID string) ([]Comment, error) {
	var out []Comment
	after := ""
	for {
		cs, next, err := s.Page(ctx, draftID, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if c.Status == StatusAccepted {
				out = append(out, c)
			}
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// ErrBadCursor is a pagination position that is not a stream id.
var ErrBadCursor = errors.New("comments: bad page cursor")

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// Crockford's base32: no I, L, O, U, so a code read aloud or retyped survives.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newCode returns "<ref>-XXXXX-XXXXX": the draft's ref, then 50 random bits.
func newCode(ref int64) (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	out := make([]byte, 0, 11)
	for i, x := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, codeAlphabet[x&31])
	}
	return strconv.FormatInt(ref, 10) + "-" + string(out), nil
}

// ParseCode normalizes a receipt code as a person may type it (lower case, spaces,
// O for 0, I or L for 1) and returns it with its draft ref.
func ParseCode(in string) (code string, ref int64, ok bool) {
	in = strings.ToUpper(strings.Join(strings.Fields(in), ""))
	refStr, rest, found := strings.Cut(in, "-")
	if !found || len(refStr) == 0 || len(refStr) > 12 {
		return "", 0, false
	}
	ref, err := strconv.ParseInt(refStr, 10, 64)
	if err != nil || ref <= 0 {
		return "", 0, false
	}
	rest = strings.ReplaceAll(rest, "-", "")
	if len(rest) != 10 {
		return "", 0, false
	}
	b := []byte(rest)
	for i, c := range b {
		switch c {
		case 'O':
			b[i] = '0'
		case 'I', 'L':
			b[i] = '1'
		}
		if !strings.ContainsRune(codeAlphabet, rune(b[i])) {
			return "", 0, false
		}
	}
	return strconv.FormatInt(ref, 10) + "-" + string(b[:5]) + "-" + string(b[5:]), ref, true
}

func isScriptError(err error, code string) bool {
	var re redis.Error
	// Redis 7 prefixes a script's error_reply with "ERR " unless it starts with a
	// known error code; accept both.
	return errors.As(err, &re) && strings.TrimPrefix(re.Error(), "ERR ") == code
}
