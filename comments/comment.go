// Package comments owns a citizen's opinion on a draft: what a submission, a
// comment and a receipt are, the rules a submission must meet, the receipt code and
// its digest, and the errors the intake answers with. It knows nothing of Redis or
// HTTP: package store keeps comments, package handlers takes them in.
package comments

import (
	"errors"
	"sort"
	"strings"
	"time"
)

// Category says who is commenting, as the citizen declares it.
type Category string

const (
	CategoryIndividual   Category = "individual"
	CategoryEnterprise   Category = "enterprise"
	CategoryOrganization Category = "organization"
	CategoryExpert       Category = "expert"
	CategoryPublicBody   Category = "public_body"
	CategoryOther        Category = "other"
)

// Categories lists every category in display order.
var Categories = []Category{CategoryIndividual, CategoryEnterprise, CategoryOrganization, CategoryExpert, CategoryPublicBody, CategoryOther}

// Status is where a submission stands after its receipt was issued. Issuing
// the receipt is the intake's doing; storing it, a worker's, later.
type Status string

const (
	StatusQueued Status = "queued" // in the intake stream, not yet processed
	// StatusStored: a worker settled it, and it is stored as a comment. The
	// value is "accepted", as receipts have always said: clients of the
	// receipt API read it (see the README's API table).
	StatusStored   Status = "accepted"
	StatusRejected Status = "rejected" // moved to the dead-letter stream
)

var (
	ErrNotFound            = errors.New("comments: not found")
	ErrWindowClosed        = errors.New("comments: comment window is closed")
	ErrWindowNotOpen       = errors.New("comments: comment window is not open yet")
	ErrIdempotencyMismatch = errors.New("comments: idempotency key reused with a different comment")
	// ErrDraftFull is a comment refused because its draft reached the stored
	// comments or bytes its limits allow: nothing was kept.
	ErrDraftFull = errors.New("comments: draft has reached its storage limit")
)

// FieldError is what is wrong with one field: a message key of the web layer's
// catalogue and its arguments. The API (in English) and the pages (in the
// person's language) translate the same key, so a rule and its message are
// written once, here, and nobody parses English.
type FieldError struct {
	Key  string
	Args []any
}

// ValidationError lists what is wrong with a submission, field by field.
type ValidationError struct{ Fields map[string]FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for f, p := range e.Fields {
		parts = append(parts, f+": "+p.Key)
	}
	sort.Strings(parts)
	return "comments: invalid: " + strings.Join(parts, "; ")
}

// Submission is what a citizen sends.
type Submission struct {
	DraftID     string
	Section     string // anchor; empty means the whole draft
	Body        string
	Name        string // optional
	Contact     string // optional; shown only to the bureau
	Category    Category
	PublishName bool // separate consent to publish the name (PIPL art. 25)
	// IdempotencyKey makes a retried submission return the first receipt.
	IdempotencyKey string
	// Client identifies the sender for flagging exact duplicates: a keyed hash of
	// the client's address made by the web layer, never the address itself.
	// Empty means unknown (no duplicate check).
	Client string
}

// Receipt is the citizen's proof that a comment was received and stored.
type Receipt struct {
	Code       string    `json:"code"`
	DraftID    string    `json:"draft_id"`
	Section    string    `json:"section"`
	ReceivedAt time.Time `json:"received_at"`
	// SHA256 is the hex digest of the comment as recorded (see Digest).
	SHA256 string `json:"sha256"`
}

// Comment is a stored opinion.
type Comment struct {
	Code string `json:"code"`
	// Entry is the comment's position in its draft's record (the intake stream
	// id, "<ms>-<seq>"): comments are ordered by it, and a digest names the range
	// of entries it covers.
	Entry       string    `json:"entry"`
	DraftID     string    `json:"draft_id"`
	Section     string    `json:"section"`
	Body        string    `json:"body"`
	Name        string    `json:"name,omitempty"`
	Contact     string    `json:"contact,omitempty"`
	Category    Category  `json:"category"`
	PublishName bool      `json:"publish_name"`
	ReceivedAt  time.Time `json:"received_at"`
	SHA256      string    `json:"sha256"`
	Status      Status    `json:"status"`
	// Duplicate marks a comment whose text the same client had already sent on
	// this draft. It is kept and counted; the digest shows the mark.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ReceiptStatus is what anyone holding a receipt code may look up: no personal data.
type ReceiptStatus struct {
	Code       string    `json:"code"`
	DraftID    string    `json:"draft_id"`
	Section    string    `json:"section"`
	Status     Status    `json:"status"`
	ReceivedAt time.Time `json:"received_at"`
	SHA256     string    `json:"sha256"`
}

// Counts are a draft's intake counters.
type Counts struct {
	Submitted int64 // receipts issued
	Stored    int64 // settled by a worker: stored as comments
	Rejected  int64 // moved to the dead-letter stream
}

// Settled reports whether every issued receipt has been processed.
func (c Counts) Settled() bool { return c.Stored+c.Rejected >= c.Submitted }
