// Package handlers is consult's web layer: the echo routes of the JSON API and of the
// server-rendered pages, their middleware, and the one place errors become responses.
// It talks to the domain packages only through the small interfaces declared here.
package handlers

import (
	"context"
	"log/slog"
	"time"

	"consult/comments"
	"consult/drafts"
)

// draftStore is what the routes need from the drafts package.
type draftStore interface {
	Create(ctx context.Context, d drafts.Draft) (drafts.Draft, error)
	Get(ctx context.Context, id string) (drafts.Draft, error)
	List(ctx context.Context, now time.Time, statuses ...drafts.Status) ([]drafts.Draft, error)
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
	Ready    Readiness
	// Metrics returns the current metrics; nil serves none.
	Metrics func(ctx context.Context) []Metric
	// AdminToken guards the admin API (Bearer). Empty disables the admin API.
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
