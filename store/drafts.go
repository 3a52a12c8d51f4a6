package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/drafts"
	rec "consult/record"
)

// Drafts keeps drafts in Redis. Drafts do not change once stored, so Get serves from a
// short-lived in-process cache: the comment intake reads a draft on every request.
type Drafts struct {
	rdb redis.UniversalClient
	now func() time.Time
	ttl time.Duration

	mu    sync.RWMutex // read on every comment: readers must not queue behind each other
	cache map[string]cached
	refs  map[int64]string
}

type cached struct {
	d       drafts.Draft
	expires time.Time
}

// NewStore returns a Drafts on rdb (which it never dials itself). now may be nil.
func NewDrafts(rdb redis.UniversalClient, now func() time.Time) *Drafts {
	if now == nil {
		now = time.Now
	}
	return &Drafts{rdb: rdb, now: now, ttl: 30 * time.Second, cache: map[string]cached{}, refs: map[int64]string{}}
}

// createScript stores a new draft unless its id is taken, and records it:
// draft.created, then draft.published (its window from the stored times), or
// draft.imported alone. The opening is decided by the Redis server's clock: none
// given, or one at most the skew in the past, is now.
//
//	KEYS[1] draft hash, KEYS[2] record, KEYS[3] intake stream
//	ARGV[1] draft JSON, ARGV[2] opens_ms ("" = now), ARGV[3] closes_ms,
//	ARGV[4] ref, ARGV[5] skew (ms; -1 = import: the window as given),
//	ARGV[6] template of the first event (draft.created or draft.imported),
//	ARGV[7] draft.published template when it opens now, ARGV[8] when it opens
//	at ARGV[2] ("" = no such event)
//	returns {now ms, opens ms} | error "EXISTS" | "OPENS_PAST" | "CLOSES_PAST"
var createScript = newRecordedScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
local now = record_now()
local opens, published = tonumber(ARGV[2]), ARGV[8]
if ARGV[5] ~= '-1' then
  if opens and opens < now - tonumber(ARGV[5]) then return redis.error_reply('OPENS_PAST') end
  if not opens or opens <= now then opens, published = now, ARGV[7] end
end
if tonumber(ARGV[3]) <= opens then return redis.error_reply('CLOSES_PAST') end
record_append(KEYS[2], KEYS[3], now, ARGV[6])
if published ~= '' then record_append(KEYS[2], KEYS[3], now, published) end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'opens_ms', opens, 'closes_ms', ARGV[3], 'ref', ARGV[4], 'created_ms', now)
return {now, opens}
`)

// newRecordedScript is RecordedScript, for this package's own scripts.
var newRecordedScript = RecordedScript

// Create validates d, parses its text into sections, assigns its ref, stores it
// and records it as created and published by actor. An OpensAt left zero, or at
// most drafts.PublishSkew in the past by the Redis server's clock, publishes the
// draft now: the returned draft carries that time as OpensAt, and as CreatedAt
// the time it was stored. It returns the stored draft, a
// *drafts.ValidationError (an opening further in the past, or a closing not
// after the opening), drafts.ErrExists, or record.ErrInvalid for a bad actor.
func (s *Drafts) Create(ctx context.Context, actor rec.Actor, d drafts.Draft) (drafts.Draft, error) {
	return s.create(ctx, actor, d, false)
}

// Import stores a consultation held before consult kept it (on paper, on
// another system) with its window as the bureau states it, in the past if so:
// the one way to store an opening the server did not stamp, and the record says
// so (draft.imported, with the times as given, instead of draft.published). It
// is not on the API; the tests use it for windows in the past. Errors as Create,
// and a *drafts.ValidationError without OpensAt.
func (s *Drafts) Import(ctx context.Context, actor rec.Actor, d drafts.Draft) (drafts.Draft, error) {
	if d.OpensAt.IsZero() {
		return drafts.Draft{}, drafts.Invalid("opens_at", "err.draft.opens_import")
	}
	return s.create(ctx, actor, d, true)
}

func (s *Drafts) create(ctx context.Context, actor rec.Actor, d drafts.Draft, imported bool) (drafts.Draft, error) {
	d.Sections = nil
	if err := d.Validate(); err != nil {
		return drafts.Draft{}, err
	}
	d.OpensAt, d.ClosesAt = d.OpensAt.UTC().Truncate(time.Millisecond), d.ClosesAt.UTC().Truncate(time.Millisecond)
	// Both are set from the script's answer (and read back from their hash fields
	// by Get): the JSON carries what was asked.
	d.CreatedAt = time.Time{}
	d.Sections = drafts.ParseSections(d.Text)
	if !actor.Valid() {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w: actor %q", d.ID, rec.ErrInvalid, actor)
	}
	// A taken id is checked before a ref is spent; the script checks again atomically.
	if n, err := s.rdb.Exists(ctx, draftHash(d.ID)).Result(); err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
	} else if n > 0 {
		return drafts.Draft{}, drafts.ErrExists
	}
	ref, err := s.rdb.Incr(ctx, refCounter).Result()
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: ref: %w", d.ID, err)
	}
	d.Ref = ref
	scope := rec.DraftScope(d.ID)
	content := draftContent(d)
	first := rec.Pending(scope, actor, rec.DraftCreated, content)
	var nowTpl, atTpl string
	if imported {
		content["opens_at"], content["closes_at"] = d.OpensAt.UnixMilli(), d.ClosesAt.UnixMilli()
		first.Action = rec.DraftImported
	} else {
		pub := rec.Data{"opens_at": rec.RedisTime, "opens_now": true, "closes_at": d.ClosesAt.UnixMilli()}
		if !d.OpensAt.IsZero() {
			pub["requested_opens_at"] = d.OpensAt.UnixMilli()
		}
		var err error
		if nowTpl, err = template(rec.Pending(scope, actor, rec.DraftPublished, pub)); err != nil {
			return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
		}
		if !d.OpensAt.IsZero() {
			at := rec.Data{"opens_at": d.OpensAt.UnixMilli(), "opens_now": false, "closes_at": d.ClosesAt.UnixMilli()}
			if atTpl, err = template(rec.Pending(scope, actor, rec.DraftPublished, at)); err != nil {
				return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
			}
		}
	}
	firstTpl, err := template(first)
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
	}
	opens, skew := "", strconv.FormatInt(drafts.PublishSkew.Milliseconds(), 10)
	if !d.OpensAt.IsZero() {
		opens = strconv.FormatInt(d.OpensAt.UnixMilli(), 10)
	}
	if imported {
		skew = "-1"
	}
	events, intake := DraftRecordKeys(d.ID)
	res, err := createScript.Run(ctx, s.rdb, []string{draftHash(d.ID), events, intake},
		b, opens, d.ClosesAt.UnixMilli(), ref, skew, firstTpl, nowTpl, atTpl).Int64Slice()
	switch {
	case isScriptError(err, "EXISTS"):
		return drafts.Draft{}, drafts.ErrExists
	case isScriptError(err, "OPENS_PAST"):
		return drafts.Draft{}, drafts.Invalid("opens_at", "err.draft.opens_past", int(drafts.PublishSkew.Minutes()))
	case isScriptError(err, "CLOSES_PAST"):
		return drafts.Draft{}, drafts.Invalid("closes_at", "err.draft.closes_past")
	case err != nil:
		return drafts.Draft{}, wrap("drafts: create "+d.ID, err)
	case len(res) != 2:
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: reply %v", d.ID, res)
	}
	d.CreatedAt, d.OpensAt = time.UnixMilli(res[0]).UTC(), time.UnixMilli(res[1]).UTC()
	// The indexes live outside the draft's slot, so they are written after it. A
	// crash in between leaves a draft that is reachable by id but not listed.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, indexByOpen, redis.Z{Score: float64(res[1]), Member: d.ID})
		p.ZAddNX(ctx, indexByClose, redis.Z{Score: float64(d.ClosesAt.UnixMilli()), Member: d.ID})
		p.Set(ctx, refKey(ref), d.ID, 0)
		return nil
	})
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: index: %w", d.ID, err)
	}
	return d, nil
}

// draftContent is what the record keeps of a draft's content: the short fields
// as they are, the long ones by SHA-256 (the draft itself keeps them).
func draftContent(d drafts.Draft) rec.Data {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	c := rec.Data{
		"title": d.Title, "bureau": d.Bureau, "kind": string(d.Kind), "ref": d.Ref,
		"text_sha256": sum(d.Text), "text_bytes": len(d.Text), "sections": len(d.Sections),
		"summary_sha256": sum(d.Summary), "digest_recipients": d.DigestRecipients,
	}
	if d.ShortenedReason != "" {
		c["shortened_reason"] = d.ShortenedReason
	}
	return c
}

// Get returns the draft with the given id, or drafts.ErrNotFound.
func (s *Drafts) Get(ctx context.Context, id string) (drafts.Draft, error) {
	now := s.now()
	s.mu.RLock()
	c, ok := s.cache[id]
	s.mu.RUnlock()
	if ok && now.Before(c.expires) {
		return c.d, nil
	}
	if !drafts.ValidID(id) {
		return drafts.Draft{}, drafts.ErrNotFound
	}
	v, err := s.rdb.HMGet(ctx, draftHash(id), "json", "limits", "opens_ms", "closes_ms", "created_ms").Result()
	if err != nil {
		return drafts.Draft{}, wrap("drafts: get "+id, err)
	}
	b, _ := v[0].(string)
	if b == "" {
		return drafts.Draft{}, drafts.ErrNotFound
	}
	var d drafts.Draft
	if err := json.Unmarshal([]byte(b), &d); err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: get %s: decode: %w", id, err)
	}
	if l, _ := v[1].(string); l != "" {
		if err := json.Unmarshal([]byte(l), &d.Limits); err != nil {
			return drafts.Draft{}, fmt.Errorf("store: drafts: get %s: decode limits: %w", id, err)
		}
	}
	// The window and the creation time are the hash fields the scripts set by
	// Redis's clock; the JSON holds what the bureau asked (no opening, for "now").
	for i, t := range []*time.Time{&d.OpensAt, &d.ClosesAt, &d.CreatedAt} {
		if str, _ := v[2+i].(string); str != "" {
			ms, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return drafts.Draft{}, fmt.Errorf("store: drafts: get %s: decode times: %w", id, err)
			}
			*t = time.UnixMilli(ms).UTC()
		}
	}
	s.mu.Lock()
	s.cache[id] = cached{d: d, expires: now.Add(s.ttl)}
	s.mu.Unlock()
	return d, nil
}

// limitsScript replaces a draft's limits, and records it (draft.limits_changed).
// The storage caps are also kept as fields of their own, which the intake script
// reads on every batch.
//
//	KEYS[1] draft hash, KEYS[2] record, KEYS[3] intake stream
//	ARGV[1] limits JSON, ARGV[2] max comments, ARGV[3] max bytes (0 = the default),
//	ARGV[4] the event's template
//	returns the event's sequence number | error "NOT_FOUND"
var limitsScript = newRecordedScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOT_FOUND') end
local seq = record_append(KEYS[2], KEYS[3], record_now(), ARGV[4])
redis.call('HSET', KEYS[1], 'limits', ARGV[1], 'max_comments', ARGV[2], 'max_bytes', ARGV[3])
return seq
`)

// SetLimits replaces a draft's limits. The storage caps take effect at once on
// every replica (the intake script reads them); the per-client limits and the
// proof of work when a replica's cached draft expires (within 30 s). The record
// gets the new limits, all four (0: the service's default), with actor. Errors:
// *drafts.ValidationError, drafts.ErrNotFound, record.ErrInvalid for a bad
// actor.
func (s *Drafts) SetLimits(ctx context.Context, actor rec.Actor, id string, l drafts.Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if !drafts.ValidID(id) {
		return drafts.ErrNotFound
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("store: drafts: limits %s: %w", id, err)
	}
	tpl, err := template(rec.Pending(rec.DraftScope(id), actor, rec.DraftLimitsChanged, rec.Data{
		"max_comments": l.MaxComments, "max_bytes": l.MaxBytes, "submits_per_hour": l.SubmitsPerHour, "pow_bits": l.PoWBits,
	}))
	if err != nil {
		return fmt.Errorf("store: drafts: limits %s: %w", id, err)
	}
	events, intake := DraftRecordKeys(id)
	err = limitsScript.Run(ctx, s.rdb, []string{draftHash(id), events, intake}, b, l.MaxComments, l.MaxBytes, tpl).Err()
	if isScriptError(err, "NOT_FOUND") {
		return drafts.ErrNotFound
	}
	if err != nil {
		return wrap("drafts: limits "+id, err)
	}
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
	return nil
}

// ByRef returns the id of the draft with the given ref, or drafts.ErrNotFound.
func (s *Drafts) ByRef(ctx context.Context, ref int64) (string, error) {
	s.mu.RLock()
	id, ok := s.refs[ref]
	s.mu.RUnlock()
	if ok {
		return id, nil
	}
	id, err := s.rdb.Get(ctx, refKey(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return "", drafts.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: drafts: ref %d: %w", ref, err)
	}
	s.mu.Lock()
	s.refs[ref] = id
	s.mu.Unlock()
	return id, nil
}

// List returns the drafts whose status at now is one of statuses (all when none is
// given): open ones first by closing time, then upcoming by opening time, then closed,
// latest first.
func (s *Drafts) List(ctx context.Context, now time.Time, statuses ...drafts.Status) ([]drafts.Draft, error) {
	ids, err := s.rdb.ZRange(ctx, indexByOpen, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: drafts: list: %w", err)
	}
	want := map[drafts.Status]bool{}
	for _, st := range statuses {
		want[st] = true
	}
	out := make([]drafts.Draft, 0, len(ids))
	for _, id := range ids {
		d, err := s.Get(ctx, id)
		if errors.Is(err, drafts.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: drafts: list: %w", err)
		}
		if len(want) == 0 || want[d.StatusAt(now)] {
			out = append(out, d)
		}
	}
	rank := map[drafts.Status]int{drafts.StatusOpen: 0, drafts.StatusUpcoming: 1, drafts.StatusClosed: 2}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ra, rb := rank[a.StatusAt(now)], rank[b.StatusAt(now)]
		if ra != rb {
			return ra < rb
		}
		switch ra {
		case 0:
			return a.ClosesAt.Before(b.ClosesAt)
		case 1:
			return a.OpensAt.Before(b.OpensAt)
		default:
			return a.ClosesAt.After(b.ClosesAt)
		}
	})
	return out, nil
}

// ClosedBefore lists the ids of drafts whose window closes at or before t.
func (s *Drafts) ClosedBefore(ctx context.Context, t time.Time) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, indexByClose, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: drafts: closed before %s: %w", t, err)
	}
	return ids, nil
}

// Empty reports whether no draft has ever been stored (for the demo consultation).
func (s *Drafts) Empty(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, refCounter).Result()
	if err != nil {
		return false, fmt.Errorf("store: drafts: empty: %w", err)
	}
	return n == 0, nil
}
