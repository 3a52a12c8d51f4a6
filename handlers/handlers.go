// Package handlers is consult's web layer: the echo routes of the JSON API and of the
// server-rendered pages, their middleware, and the one place errors become responses.
// It talks to the domain packages only through the small interfaces declared here.
package handlers

import (
	"context"
	"log/slog"
	"net"
	"time"

	"consult/comments"
	"consult/drafts"
	"consult/record"
)

// draftStore is what the routes need from the drafts package. The changes take
// the actor that the record names (see actorOf).
type draftStore interface {
	Create(ctx context.Context, actor record.Actor, d drafts.Draft) (drafts.Draft, error)
	Get(ctx context.Context, id string) (drafts.Draft, error)
	List(ctx context.Context, now time.Time, statuses ...drafts.Status) ([]drafts.Draft, error)
	SetLimits(ctx context.Context, actor record.Actor, id string, l drafts.Limits) error
}

// recordReader reads a consultation's record, or the staff's (store.Records).
type recordReader interface {
	// Page returns up to limit events after sequence number after, and the
	// number to continue after (0: no more yet).
	Page(ctx context.Context, scope record.Scope, after, limit int64) ([]record.Event, int64, error)
}

// commentStore is what the routes need from the comments package.
type commentStore interface {
	Submit(ctx context.Context, s comments.Submission) (comments.Receipt, error)
	Lookup(ctx context.Context, code string) (comments.ReceiptStatus, error)
	Counts(ctx context.Context, draftID string) (comments.Counts, error)
	Page(ctx context.Context, draftID, after string, limit int64) ([]comments.Comment, string, error)
}

// digestRequester asks the notify scheduler for an interim digest.
type digestRequester interface {
	RequestInterim(ctx context.Context, draftID string) (string, error)
}

// limiter holds the per-client rate limits (store.Limiter). Each method counts
// one event and returns 0 when it may go on, else how long until it may. A
// client is the keyed hash clientID makes, never an address.
type limiter interface {
	AllowComment(ctx context.Context, draftID, client string, perHour int) (time.Duration, error)
	AllowLookup(ctx context.Context, client string) (time.Duration, error)
}

// proofStore remembers spent proofs of work (store.Proofs): Spend reports false
// for a proof spent before.
type proofStore interface {
	Spend(ctx context.Context, draftID, id string, expires time.Time) (bool, error)
}

// Readiness reports whether the service can take comments, and any warning (such as
// a Redis that could lose acknowledged comments on a crash).
type Readiness interface {
	Ready(ctx context.Context) (warnings []string, err error)
}

// Metric is one line of /metrics.
type Metric struct {
	Name, Help, Type string // Type: counter or gauge
	Value            float64
}

// Config is everything the routes need; cmd/consultd fills it.
type Config struct {
	Drafts   draftStore
	Comments commentStore
	Digests  digestRequester
	Records  recordReader
	// DigestFiles serves the files digest e-mails link to; nil answers 404.
	DigestFiles digestFiles
	Ready       Readiness
	// Metrics returns the current metrics; nil serves none.
	Metrics func(ctx context.Context) []Metric
	// Accounts keeps the staff's users, tokens and sessions (store.Accounts).
	// Nil: nobody signs in, and the admin token is the API's one credential.
	Accounts accountStore
	// AdminToken (CONSULT_ADMIN_TOKEN) is an admin's Bearer credential on the
	// API that is no one's account: for first setup and automation, recorded
	// as the actor "admin-token". Empty: no such credential.
	AdminToken string
	// Now is the clock for display (time left, status); nil means time.Now.
	Now func() time.Time
	// Location is the zone times are shown in; nil means Asia/Shanghai.
	Location *time.Location
	// BaseURL is the public address, for links in receipts; may be empty.
	BaseURL string
	Logger  *slog.Logger
	// Secure marks cookies Secure (serve behind HTTPS).
	Secure bool
	// RequestTimeout bounds how long one request waits for storage: past it the
	// answer is 503 with Retry-After and no receipt. Zero means 3 seconds.
	RequestTimeout time.Duration
	// Limiter holds the per-client rate limits; nil switches them off
	// (CONSULT_LIMITS=off, for load tests from one address).
	Limiter limiter
	// Proofs remembers spent proofs of work. Nil remembers none, so that a
	// solved challenge could be replayed until it expires: for tests only.
	Proofs proofStore
	// Secret keys the client hashes (rate limits, duplicate flags), the
	// proof-of-work challenges and the request log's day keys. Replicas must
	// share it (store.Secret). Nil makes a random one for this process.
	Secret []byte
	// TrustedProxies are the networks whose X-Forwarded-For is believed; the
	// client is then the nearest address in it not in these networks. Empty:
	// the client is the connection's peer.
	TrustedProxies []*net.IPNet
}

// draftAndCount returns a draft and the number of comments it has received.
func (s *server) draftAndCount(ctx context.Context, id string) (drafts.Draft, int64, error) {
	d, err := s.Drafts.Get(ctx, id)
	if err != nil {
		return drafts.Draft{}, 0, err
	}
	n, err := s.Comments.Counts(ctx, d.ID)
	if err != nil {
		return drafts.Draft{}, 0, err
	}
	return d, n.Submitted, nil
}
