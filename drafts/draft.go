// Package drafts owns a draft policy put out for public comment: its metadata, its
// comment window and the sections a citizen can comment on (parsed from the text).
// It knows nothing of Redis or HTTP: package store keeps drafts.
package drafts

import (
	"errors"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is the legal kind of the document, which later decides the minimum window.
type Kind string

const (
	KindNormative     Kind = "normative"      // 行政规范性文件
	KindMajorDecision Kind = "major_decision" // 重大行政决策
	KindRule          Kind = "rule"           // 规章
	KindOther         Kind = "other"          // 其他
)

// Kinds lists every valid kind in display order.
var Kinds = []Kind{KindNormative, KindMajorDecision, KindRule, KindOther}

// Status is where a draft's window stands at a given time.
type Status string

const (
	StatusUpcoming Status = "upcoming"
	StatusOpen     Status = "open"
	StatusClosed   Status = "closed"
)

var (
	ErrNotFound = errors.New("drafts: not found")
	ErrExists   = errors.New("drafts: id already taken")
)

// FieldError is what is wrong with one field: a message key of the web layer's
// catalogue and its arguments. The API (in English) and any page translate the
// same key, so a rule and its message are written once, here.
type FieldError struct {
	Key  string
	Args []any
}

// ValidationError lists what is wrong with a draft, field by field.
type ValidationError struct{ Fields map[string]FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for f, p := range e.Fields {
		parts = append(parts, f+": "+p.Key)
	}
	sort.Strings(parts)
	return "drafts: invalid: " + strings.Join(parts, "; ")
}

// Invalid is a *ValidationError on one field.
func Invalid(field, key string, args ...any) *ValidationError {
	return &ValidationError{Fields: map[string]FieldError{field: {Key: key, Args: args}}}
}

// Draft is a document put out for comment. Once stored it does not change: a changed
// text is a new consultation (PUB-FROZEN in ../shared/legal-requirements.md).
type Draft struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Bureau  string `json:"bureau"`
	Kind    Kind   `json:"kind"`
	Summary string `json:"summary"`
	Text    string `json:"text"`
	// OpensAt is when the window opens. Left zero (or at most PublishSkew in the
	// past) when the draft is created, it is the moment the draft is stored, by
	// the Redis server's clock.
	OpensAt          time.Time `json:"opens_at"`
	ClosesAt         time.Time `json:"closes_at"`
	DigestRecipients []string  `json:"digest_recipients"`
	ShortenedReason  string    `json:"shortened_reason,omitempty"`
	// Ref is a short number assigned at creation; receipt codes start with it so
	// that a code alone finds its draft, on one server or a Cluster.
	Ref int64 `json:"ref"`
	// CreatedAt is when the draft was stored and became visible, by the Redis
	// server's clock.
	CreatedAt time.Time `json:"created_at"`
	Sections  []Section `json:"sections"`
	// Limits bound what the public may send to this draft. They are the one part
	// of a draft that changes after it is stored (a bureau tightens them under
	// attack), so they are kept apart from the rest (see store.Drafts.SetLimits).
	Limits Limits `json:"-"`
}

// Limits bound the public's use of one draft. A zero field means the service's
// default (configured in cmd/consultd); no field switches a limit off: that is
// the service-wide CONSULT_LIMITS=off, for load tests.
type Limits struct {
	// MaxComments caps the comments stored on the draft; past it the intake
	// answers "unavailable" and keeps nothing.
	MaxComments int64 `json:"max_comments,omitempty"`
	// MaxBytes caps the bytes of comment text stored on the draft.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// SubmitsPerHour caps one client's comments on this draft per hour.
	SubmitsPerHour int `json:"submits_per_hour,omitempty"`
	// PoWBits, when above zero, asks every comment form to carry a proof of work
	// of that many leading zero bits (hashcash-style), solved by the page.
	PoWBits int `json:"pow_bits,omitempty"`
}

// MaxPoWBits bounds the proof of work a bureau may ask for: 2^22 hashes take a
// phone a few seconds in the page's script.
const MaxPoWBits = 22

// Validate checks limits as a bureau sets them.
func (l Limits) Validate() error {
	f := map[string]FieldError{}
	if l.MaxComments < 0 {
		f["max_comments"] = FieldError{Key: "err.negative"}
	}
	if l.MaxBytes < 0 {
		f["max_bytes"] = FieldError{Key: "err.negative"}
	}
	if l.SubmitsPerHour < 0 {
		f["submits_per_hour"] = FieldError{Key: "err.negative"}
	}
	if l.PoWBits < 0 || l.PoWBits > MaxPoWBits {
		f["pow_bits"] = FieldError{Key: "err.limits.pow_bits", Args: []any{MaxPoWBits}}
	}
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}

// StatusAt tells where the window stands at now. It is for display and scheduling;
// whether a comment is on time is decided by Redis's clock in the intake script.
func (d Draft) StatusAt(now time.Time) Status {
	switch {
	case now.Before(d.OpensAt):
		return StatusUpcoming
	case now.Before(d.ClosesAt):
		return StatusOpen
	default:
		return StatusClosed
	}
}

// Section returns the section with the given anchor.
func (d Draft) Section(anchor string) (Section, bool) {
	for _, s := range d.Sections {
		if s.Anchor == anchor {
			return s, true
		}
	}
	return Section{}, false
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,63}$`)

// ValidID reports whether id can name a draft: it appears in URLs and, as the
// hash tag, in every Redis key of the draft, so no braces or spaces.
func ValidID(id string) bool { return idPattern.MatchString(id) }

const (
	maxTitle      = 300
	maxBureau     = 200
	maxSummary    = 20000
	maxText       = 500000
	maxRecipients = 50
)

// PublishSkew is how far in the past an opening may be and still mean "now":
// the bureau's clock and the Redis server's disagree by a little, and a request
// takes a moment to arrive. Further in the past is refused: the record would
// otherwise show a publication date the bureau typed rather than the server's
// (see store.Drafts.Create).
const PublishSkew = 5 * time.Minute

// Validate checks a draft as submitted by a bureau. A zero OpensAt is valid: it
// means "publish now". Whether an opening is in the past, and whether the
// window then closes after it, is decided by the Redis server's clock when the
// draft is stored.
func (d Draft) Validate() error {
	f := map[string]FieldError{}
	if !idPattern.MatchString(d.ID) {
		f["id"] = FieldError{Key: "err.draft.id"}
	}
	checkText := func(name, v string, max int, required bool) {
		switch n := utf8.RuneCountInString(v); {
		case !utf8.ValidString(v):
			f[name] = FieldError{Key: "err.utf8"}
		case required && strings.TrimSpace(v) == "":
			f[name] = FieldError{Key: "err.required"}
		case n > max:
			f[name] = FieldError{Key: "err.too_long", Args: []any{max, n}}
		}
	}
	checkText("title", d.Title, maxTitle, true)
	checkText("bureau", d.Bureau, maxBureau, true)
	checkText("summary", d.Summary, maxSummary, false)
	checkText("text", d.Text, maxText, true)
	checkText("shortened_reason", d.ShortenedReason, 2000, false)
	switch d.Kind {
	case KindNormative, KindMajorDecision, KindRule, KindOther:
	default:
		f["kind"] = FieldError{Key: "err.draft.kind"}
	}
	if d.ClosesAt.IsZero() {
		f["closes_at"] = FieldError{Key: "err.draft.closes_required"}
	} else if !d.OpensAt.IsZero() && !d.ClosesAt.After(d.OpensAt) {
		f["closes_at"] = FieldError{Key: "err.draft.closes_before_opens"}
	}
	if len(d.DigestRecipients) == 0 {
		f["digest_recipients"] = FieldError{Key: "err.draft.recipients_none"}
	} else if len(d.DigestRecipients) > maxRecipients {
		f["digest_recipients"] = FieldError{Key: "err.draft.recipients_many", Args: []any{maxRecipients}}
	}
	for _, r := range d.DigestRecipients {
		if a, err := mail.ParseAddress(r); err != nil || a.Name != "" || a.Address != r {
			f["digest_recipients"] = FieldError{Key: "err.draft.recipient", Args: []any{r}}
			break
		}
	}
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}
