// Package record owns a consultation's record: the events that every state
// change appends, who did it, when by the Redis server's clock, and what
// changed; and the one canonical encoding each event is stored, hashed and
// shown in. It knows nothing of Redis or HTTP: package store appends events in
// the same script as the change they record, and reads them back.
//
// A record is append-only and totally ordered within its scope: the events of
// one consultation carry the sequence numbers 1, 2, 3, … with no gap, and an
// event, once written, is never changed or removed. Comments are not events:
// their arrival is recorded, in order and by Redis's clock, by the draft's
// intake stream, and every event names the last intake entry written before it
// (Event.Intake), so that the two make one order without a write per comment.
//
// The encoding is meant to be the leaf of a transparency log later (as in
// golang.org/x/mod/sumdb/tlog): the stored bytes are what is hashed, and anyone
// can rebuild them from an event's fields (see Event.Encode).
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrInvalid is an event that cannot be written: an unknown action, an
	// action outside its scope, a malformed actor or data.
	ErrInvalid = errors.New("record: invalid event")
	// ErrNotCanonical is stored bytes that are not the canonical encoding of an
	// event: a record damaged, or written by something other than this package.
	ErrNotCanonical = errors.New("record: not a canonical event")
)

// Version is the encoding's version, written in every event as "v".
const Version = 1

// Scope names a record: one consultation's, or the staff's (users and tokens).
type Scope string

// Staff is the record of user and token changes.
const Staff Scope = "staff"

// DraftScope is the record of the consultation on draft id.
func DraftScope(id string) Scope { return Scope("draft:" + id) }

// DraftID returns the draft a scope belongs to, and false for the staff scope.
func (s Scope) DraftID() (string, bool) {
	id, ok := strings.CutPrefix(string(s), "draft:")
	return id, ok && id != ""
}

func (s Scope) valid() bool {
	if s == Staff {
		return true
	}
	id, ok := s.DraftID()
	return ok && plain(id, 64)
}

// Actor is who caused an event: a staff user ("user:<id>", by session or by
// one of their API tokens), an API token ("token:<id>"), the API's shared admin
// token ("admin-token", an admin that is no one's account), the command line
// run by an operating-system user ("console:<os user>"), the public, or
// consultd itself ("system": a digest sent when a window closed, an account
// locked after failed logins).
type Actor string

const (
	Public     Actor = "public"
	System     Actor = "system"
	AdminToken Actor = "admin-token"
)

// User is the actor for a staff user's act.
func User(id string) Actor { return Actor("user:" + id) }

// Token is the actor for an act through an API token.
func Token(id string) Actor { return Actor("token:" + id) }

// Console is the actor for the command line (consultd user …, consultd token
// …) run by the operating-system user osUser, which must be a name Valid takes
// (cmd/consultd makes one of any name the system gives it).
func Console(osUser string) Actor { return Actor("console:" + osUser) }

// Valid reports whether a can be written into an event: one of the fixed
// actors, or a kind and an id of 1 to 128 bytes of [A-Za-z0-9._-] (written
// unescaped, so that an actor never needs quoting to be read).
func (a Actor) Valid() bool {
	switch a {
	case Public, System, AdminToken:
		return true
	}
	for _, p := range []string{"user:", "token:", "console:"} {
		if id, ok := strings.CutPrefix(string(a), p); ok {
			return plain(id, 128)
		}
	}
	return false
}

// Action is what happened.
type Action string

// The actions of a consultation's record.
const (
	DraftCreated   Action = "draft.created"   // data: the draft's content, by hash
	DraftPublished Action = "draft.published" // data: opens_at, closes_at (ms); at is when it became visible
	// DraftImported is a consultation held before consult kept it: its window is
	// as the bureau states it, not stamped by the server (store.Drafts.Import).
	DraftImported       Action = "draft.imported"
	DraftEdited         Action = "draft.edited" // before its window opens
	DraftWindowExtended Action = "draft.window_extended"
	DraftWithdrawn      Action = "draft.withdrawn"
	DraftLimitsChanged  Action = "draft.limits_changed"
	CommentEntered      Action = "comment.entered" // on behalf of someone (letter, phone, hearing)
	CommentHidden       Action = "comment.hidden"
	CommentUnhidden     Action = "comment.unhidden"
	DecisionRecorded    Action = "decision.recorded"
	FeedbackPublished   Action = "feedback.published"
	DigestSent          Action = "digest.sent" // one per recipient
)

// The actions of the staff record. Never a password, its hash, a token or its
// hash in data: a token is named by its id.
const (
	UserCreated  Action = "user.created" // data: user, role, bureaus (ids)
	UserChanged  Action = "user.changed" // data: user, changed (a list: "password", "bureaus", …)
	UserDisabled Action = "user.disabled"
	// UserLockedOut: too many failed logins locked the account (data: user,
	// failures, lockout_ms). A security event: a guesser at work shows here.
	UserLockedOut Action = "user.locked_out"
	BureauCreated Action = "bureau.created" // data: bureau (its id), name
	TokenCreated  Action = "token.created"  // data: token (its id), user, scope, label
	TokenRevoked  Action = "token.revoked"  // data: token, user
)

// actions maps every known action to whether it belongs to the staff record.
// An action not listed here cannot be written: add it above first.
var actions = map[Action]bool{
	DraftCreated: false, DraftPublished: false, DraftImported: false, DraftEdited: false,
	DraftWindowExtended: false, DraftWithdrawn: false, DraftLimitsChanged: false,
	CommentEntered: false, CommentHidden: false, CommentUnhidden: false,
	DecisionRecorded: false, FeedbackPublished: false, DigestSent: false,
	UserCreated: true, UserChanged: true, UserDisabled: true, UserLockedOut: true, BureauCreated: true,
	TokenCreated: true, TokenRevoked: true,
}

// Data is what changed. Keys are lower-case ASCII ([a-z][a-z0-9_]*); values
// are strings, integers (int or int64, within ±2^53, so that any JSON reader
// gets them exactly), booleans, lists of strings, nested Data, or RedisTime.
// Times are Unix milliseconds. No commenter's personal data goes here (a name,
// a contact, a client's address or its hash): name a comment by its receipt
// code or intake entry; the record is kept for good, and personal data must be
// erasable.
type Data map[string]any

// RedisTime, as a value in Data, is written as the event's own time (Unix
// milliseconds by the Redis server's clock): for a time the server decides in
// the same script, such as the opening of a draft published now.
var RedisTime redisTime

type redisTime struct{}

// Event is one entry of a record.
type Event struct {
	Scope Scope
	// Seq is the event's place in its scope's record: 1 for the first, and one
	// more for each after it. Set by Redis when the event is written.
	Seq int64
	// At is when the event was written, by the Redis server's clock, in
	// milliseconds. Set by Redis when the event is written.
	At time.Time
	// Intake is, in a consultation's record, the id of the draft's last intake
	// stream entry when the event was written ("0-0": none yet): the event comes
	// after that comment and before the next. Empty in the staff record. Set by
	// Redis when the event is written.
	Intake string
	Actor  Actor
	Action Action
	Data   Data
}

// Hash is the SHA-256 of the event's canonical encoding, in hex: the same as
// the hash of the bytes the record stores (see Parse).
func (e Event) Hash() (string, error) {
	b, err := e.Encode()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Pending is an event before Redis writes it: Scope, Actor, Action and Data set.
func Pending(s Scope, a Actor, act Action, d Data) Event {
	return Event{Scope: s, Actor: a, Action: act, Data: d}
}

func (e Event) check(written bool) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }
	if !e.Scope.valid() {
		return bad(fmt.Sprintf("scope %q", e.Scope))
	}
	staff, ok := actions[e.Action]
	if !ok {
		return bad(fmt.Sprintf("unknown action %q", e.Action))
	}
	if staff != (e.Scope == Staff) {
		return bad(fmt.Sprintf("action %s in scope %s", e.Action, e.Scope))
	}
	if !e.Actor.Valid() {
		return bad(fmt.Sprintf("actor %q", e.Actor))
	}
	if written {
		if e.Seq < 1 || e.Seq > maxInt {
			return bad(fmt.Sprintf("seq %d", e.Seq))
		}
		if ms := e.At.UnixMilli(); ms < 0 || ms > maxInt || !e.At.Equal(time.UnixMilli(ms)) {
			return bad("at must be whole milliseconds after 1970")
		}
		if _, draft := e.Scope.DraftID(); draft != (e.Intake != "") || (draft && !streamID(e.Intake)) {
			return bad(fmt.Sprintf("intake %q in scope %s", e.Intake, e.Scope))
		}
	}
	return nil
}

// plain reports whether s is 1 to max bytes of [A-Za-z0-9._-]: ids that appear
// in actors and scopes are written unescaped.
func plain(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// streamID reports whether s is a Redis stream id, "<ms>-<seq>".
func streamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	return ok && digits(ms) && digits(seq)
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
