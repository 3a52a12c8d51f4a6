package store

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// The keys of this file. They belong in keys.go; they are here until the intake
// rewrite that holds keys.go lands, so that the two changes don't collide.
//
// redis_rate puts "rate:" before every key it is given, so the limiter's keys
// read "rate:consult:{id}:rl:…": the hash tag still puts a draft's limits in its
// slot (Cluster hashes the first {…} of a key, wherever it stands).
func commentRateKey(draftID, client string) string { return "consult:{" + draftID + "}:rl:c:" + client }
func lookupRateKey(client string) string           { return "consult:rl:r:" + client }
func proofKey(draftID, id string) string           { return "consult:{" + draftID + "}:pow:" + id }

// secretKey holds the process secret shared by every replica (see Secret).
const secretKey = "consult:secret"

// Rate is a limit on one client: Burst at once, then Per events spread evenly
// over an hour (a generic cell rate: one more every hour/Per).
type Rate struct {
	Burst, PerHour int
}

// LimiterConfig holds the service's per-client limits. A zero field is the
// default named beside it.
type LimiterConfig struct {
	// Comments is one client's comments on one draft when the draft names no
	// SubmitsPerHour of its own; default 600 an hour after a burst of 60.
	Comments Rate
	// Lookups is one client's receipt look-ups (pages and API, every draft
	// together); default 1200 an hour after a burst of 120.
	Lookups Rate
}

// DefaultComments and DefaultLookups are the limits a zero LimiterConfig gets.
// The README ("Limits") gives the reasoning: one carrier-grade NAT address may
// carry thousands of phones, and an office of hundreds may comment together.
var (
	DefaultComments = Rate{Burst: 60, PerHour: 600}
	DefaultLookups  = Rate{Burst: 120, PerHour: 1200}
)

// Limiter keeps per-client rate limits in Redis, so that every replica counts
// against the same budget. A client is named only by a keyed hash made by the
// caller (never an address: the keys outlive the request).
type Limiter struct {
	rl  *redis_rate.Limiter
	cfg LimiterConfig
}

// NewLimiter returns a Limiter on rdb, which it never dials itself. It uses
// redis_rate's GCRA script: one EVALSHA per check, no key growth (each key
// expires when its client is back to a full burst).
func NewLimiter(rdb redis.UniversalClient, cfg LimiterConfig) *Limiter {
	if cfg.Comments.PerHour <= 0 {
		cfg.Comments = DefaultComments
	}
	if cfg.Lookups.PerHour <= 0 {
		cfg.Lookups = DefaultLookups
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb), cfg: cfg}
}

// AllowComment counts one comment from client on a draft. perHour is the
// draft's own SubmitsPerHour (0: the service's); its burst is a tenth of it, at
// least 1. It returns 0 when the comment may go on, else how long until it may.
// Errors are outages (marked as store's are).
func (l *Limiter) AllowComment(ctx context.Context, draftID, client string, perHour int) (time.Duration, error) {
	r := l.cfg.Comments
	if perHour > 0 {
		r = Rate{Burst: max(1, perHour/10), PerHour: perHour}
	}
	return l.allow(ctx, "limit comment", commentRateKey(draftID, client), r)
}

// AllowLookup counts one receipt look-up from client; as AllowComment.
func (l *Limiter) AllowLookup(ctx context.Context, client string) (time.Duration, error) {
	return l.allow(ctx, "limit lookup", lookupRateKey(client), l.cfg.Lookups)
}

func (l *Limiter) allow(ctx context.Context, op, key string, r Rate) (time.Duration, error) {
	res, err := l.rl.Allow(ctx, key, redis_rate.Limit{Rate: r.PerHour, Burst: max(1, r.Burst), Period: time.Hour})
	if err != nil {
		return 0, wrap(op, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}

// Proofs remembers the proofs of work already spent, so that a solved
// challenge buys one comment. The challenges themselves are stateless (signed
// by the web layer); only their use is recorded.
type Proofs struct{ rdb redis.UniversalClient }

// NewProofs returns a Proofs on rdb, which it never dials itself.
func NewProofs(rdb redis.UniversalClient) *Proofs { return &Proofs{rdb: rdb} }

// Spend records the proof id as used on the draft until it expires (the record
// goes with it: an expired proof is refused anyway). It reports false when the
// proof was spent before. Errors are outages.
func (p *Proofs) Spend(ctx context.Context, draftID, id string, expires time.Time) (bool, error) {
	ttl := time.Until(expires)
	if ttl < time.Second {
		ttl = time.Second
	}
	ok, err := p.rdb.SetNX(ctx, proofKey(draftID, id), 1, ttl).Result()
	if err != nil {
		return false, wrap("spend proof", err)
	}
	return ok, nil
}

// Secret returns the service's secret: 32 random bytes made by the first
// replica that asks (SET NX) and read by every other, so that a client hash, a
// proof-of-work challenge or a log's day key made by one replica is the same on
// all. It is never logged. Deleting the key rotates it: replicas pick the new one
// up at their next start.
func Secret(ctx context.Context, rdb redis.UniversalClient) ([]byte, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	if err := rdb.SetNX(ctx, secretKey, b, 0).Err(); err != nil {
		return nil, wrap("secret", err)
	}
	v, err := rdb.Get(ctx, secretKey).Bytes()
	if err != nil {
		return nil, wrap("secret", err)
	}
	if len(v) < 32 {
		return nil, errors.New("store: secret: the stored secret is shorter than 32 bytes")
	}
	return v, nil
}
