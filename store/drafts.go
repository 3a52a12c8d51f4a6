package store

import (
	"consult/drafts"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
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

// createScript stores a new draft unless its id is taken.
//
//	KEYS[1] draft hash
//	ARGV[1] draft JSON, ARGV[2] opens_ms, ARGV[3] closes_ms, ARGV[4] ref
//	returns 1 | error "EXISTS"
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'opens_ms', ARGV[2], 'closes_ms', ARGV[3], 'ref', ARGV[4])
return 1
`)

// Create validates d, parses its text into sections, assigns its ref and stores it.
// It returns the stored draft, a *drafts.ValidationError, or drafts.ErrExists.
func (s *Drafts) Create(ctx context.Context, d drafts.Draft) (drafts.Draft, error) {
	d.Sections = nil
	if err := d.Validate(); err != nil {
		return drafts.Draft{}, err
	}
	d.OpensAt, d.ClosesAt = d.OpensAt.UTC().Truncate(time.Millisecond), d.ClosesAt.UTC().Truncate(time.Millisecond)
	d.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	d.Sections = drafts.ParseSections(d.Text)
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
	b, err := json.Marshal(d)
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
	}
	opens, closes := d.OpensAt.UnixMilli(), d.ClosesAt.UnixMilli()
	if err := createScript.Run(ctx, s.rdb, []string{draftHash(d.ID)}, b, opens, closes, ref).Err(); err != nil {
		if isScriptError(err, "EXISTS") {
			return drafts.Draft{}, drafts.ErrExists
		}
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: %w", d.ID, err)
	}
	// The indexes live outside the draft's slot, so they are written after it. A
	// crash in between leaves a draft that is reachable by id but not listed.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, indexByOpen, redis.Z{Score: float64(opens), Member: d.ID})
		p.ZAddNX(ctx, indexByClose, redis.Z{Score: float64(closes), Member: d.ID})
		p.Set(ctx, refKey(ref), d.ID, 0)
		return nil
	})
	if err != nil {
		return drafts.Draft{}, fmt.Errorf("store: drafts: create %s: index: %w", d.ID, err)
	}
	return d, nil
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
	v, err := s.rdb.HMGet(ctx, draftHash(id), "json", "limits").Result()
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
	s.mu.Lock()
	s.cache[id] = cached{d: d, expires: now.Add(s.ttl)}
	s.mu.Unlock()
	return d, nil
}

// limitsScript replaces a draft's limits. The storage caps are also kept as
// fields of their own, which the intake script reads on every batch.
//
//	KEYS[1] draft hash
//	ARGV[1] limits JSON, ARGV[2] max comments, ARGV[3] max bytes (0 = the default)
//	returns 1 | error "NOT_FOUND"
var limitsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOT_FOUND') end
redis.call('HSET', KEYS[1], 'limits', ARGV[1], 'max_comments', ARGV[2], 'max_bytes', ARGV[3])
return 1
`)

// SetLimits replaces a draft's limits. The storage caps take effect at once on
// every replica (the intake script reads them); the per-client limits and the
// proof of work when a replica's cached draft expires (within 30 s). Errors:
// *drafts.ValidationError, drafts.ErrNotFound.
func (s *Drafts) SetLimits(ctx context.Context, id string, l drafts.Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("store: drafts: limits %s: %w", id, err)
	}
	err = limitsScript.Run(ctx, s.rdb, []string{draftHash(id)}, b, l.MaxComments, l.MaxBytes).Err()
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
