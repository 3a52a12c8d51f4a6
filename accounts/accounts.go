// Package accounts owns the staff's identities: users and their roles, bureaus,
// API tokens, the rules of a session, password hashing, and who may do what
// (Principal.May). It knows nothing of Redis or HTTP: package store keeps
// accounts and sessions, package handlers asks them who is calling.
//
// Citizens have no accounts: commenting and looking up a receipt need none.
package accounts

import (
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"consult/record"
)

// Role is what a user is for.
type Role string

const (
	// RoleAdmin manages users and bureaus, and may do what any bureau may.
	RoleAdmin Role = "admin"
	// RoleBureau belongs to one or more bureaus and manages only their drafts.
	RoleBureau Role = "bureau"
	// RoleReviewer reads every consultation and its comments, and changes nothing.
	RoleReviewer Role = "reviewer"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleBureau, RoleReviewer}

// Scope is what an API token may do, within its user's role.
type Scope string

const (
	// ScopeRead only reads (a draft's comments, with contacts).
	ScopeRead Scope = "read"
	// ScopeWrite does everything its user may: sessions and the admin token have it.
	ScopeWrite Scope = "write"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeRead, ScopeWrite}

// Actor names who made a change, in the log and the record: "user:alice",
// "admin-token" for CONSULT_ADMIN_TOKEN, "console:root" for the command line.
// It is the record's own type, so that what authenticates a caller is what the
// staff record and a consultation's record write (record.Actor.Valid).
type Actor = record.Actor

// ActorAdminToken is CONSULT_ADMIN_TOKEN (or the generated one): an actor of
// its own, so that what it did is never put down to a person.
const ActorAdminToken = record.AdminToken

// UserActor is the actor of a signed-in user or of one of their tokens. A
// valid user name (ValidName) makes a valid actor.
func UserActor(name string) Actor { return record.User(name) }

// ConsoleActor is the command line, run by the named operating-system user
// (see record.Console for the names it takes).
func ConsoleActor(osUser string) Actor { return record.Console(osUser) }

// User is a member of staff. The password hash is kept by the store, apart.
type User struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Bureaus are the ids of the bureaus a bureau user belongs to; empty for
	// other roles.
	Bureaus  []string `json:"bureaus,omitempty"`
	Disabled bool     `json:"disabled"`
	// Epoch is the user's session epoch: a session made at another epoch is
	// over. Disabling the user or changing the password moves it on, which ends
	// every session at once, on every replica.
	Epoch             int64     `json:"-"`
	CreatedAt         time.Time `json:"created_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
}

// Bureau is a drafting body. A draft names its bureau in free text; the record
// is found by that name's key (BureauKey) and made the first time a draft or a
// user names it.
type Bureau struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is an API token as listed: never the secret, which is shown once when
// it is made and kept only as a hash.
type Token struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Scope      Scope     `json:"scope"`
	Label      string    `json:"label"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the token no longer works.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Errors. Every one that a person can cause has a message in the web layer's
// catalogue.
var (
	ErrNotFound = errors.New("accounts: not found")
	ErrExists   = errors.New("accounts: name already taken")
	// ErrBadCredentials: no such user, or the wrong password (never said which).
	ErrBadCredentials = errors.New("accounts: wrong user name or password")
	// ErrUnauthenticated: no credential, or one that no longer works (an
	// expired or ended session, a revoked or unknown token, a disabled user).
	ErrUnauthenticated = errors.New("accounts: not signed in")
	// ErrForbidden: a known caller not entitled to what it asked.
	ErrForbidden = errors.New("accounts: not allowed")
	// ErrDisabled: the user is disabled (a token can't be made for them).
	ErrDisabled = errors.New("accounts: user is disabled")
)

// LockedError refuses a login attempt while an account or an address is
// locked out after too many failures.
type LockedError struct {
	Until time.Time
	// Address: the address (not the account) is locked.
	Address bool
}

func (e *LockedError) Error() string {
	what := "account"
	if e.Address {
		what = "address"
	}
	return "accounts: " + what + " locked after too many failed logins until " + e.Until.UTC().Format(time.RFC3339)
}

// Problem is what is wrong with one field: a message key of the web layer's
// catalogue and its arguments, so that the API and the pages translate the same
// thing and nobody parses English.
type Problem struct {
	Key  string
	Args []any
}

// ValidationError lists what is wrong, field by field.
type ValidationError struct{ Fields map[string]Problem }

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for f, p := range e.Fields {
		parts = append(parts, f+": "+p.Key)
	}
	return "accounts: invalid: " + strings.Join(parts, "; ")
}

// problems collects field problems; err returns nil when there are none.
type problems map[string]Problem

func (p problems) add(field, key string, args ...any) {
	if _, ok := p[field]; !ok {
		p[field] = Problem{Key: key, Args: args}
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Fields: p}
}

const (
	// MinPassword is the shortest password, in characters: staff read every
	// commenter's contact details.
	MinPassword = 12
	// MaxPassword bounds what is hashed, in bytes.
	MaxPassword = 1024
	// MaxLabel bounds a token's label, in characters.
	MaxLabel = 100
	// MaxBureauName is a draft's limit on its bureau's name.
	MaxBureauName = 200
)

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// NormalizeName is a user name as stored: trimmed, lower case.
func NormalizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// ValidName reports whether name (normalized) can name a user: 2 to 64 of
// a-z, 0-9, '.', '_' and '-', starting with a letter or digit. It goes into
// keys and the log, so nothing else.
func ValidName(name string) bool { return nameRe.MatchString(name) }

// Validate checks a user to be stored. Errors: *ValidationError.
func (u User) Validate() error {
	p := problems{}
	if !ValidName(u.Name) {
		p.add("name", "err.user.name")
	}
	switch u.Role {
	case RoleBureau:
		if len(u.Bureaus) == 0 {
			p.add("bureaus", "err.user.bureau_required")
		}
	case RoleAdmin, RoleReviewer:
		if len(u.Bureaus) > 0 {
			p.add("bureaus", "err.user.bureau_role")
		}
	default:
		p.add("role", "err.user.role")
	}
	return p.err()
}

// ValidatePassword checks a new password for user name. Errors: *ValidationError
// on the field "password".
func ValidatePassword(name, password string) error {
	p := problems{}
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		p.add("password", "err.utf8")
	case len(password) > MaxPassword:
		p.add("password", "err.password.long", MaxPassword)
	case n < MinPassword:
		p.add("password", "err.password.short", MinPassword, n)
	case strings.EqualFold(strings.TrimSpace(password), name):
		p.add("password", "err.password.name")
	}
	return p.err()
}

// ValidScope reports whether s is a scope.
func ValidScope(s Scope) bool { return s == ScopeRead || s == ScopeWrite }

// ValidateToken checks a token to be made. Errors: *ValidationError.
func ValidateToken(scope Scope, label string) error {
	p := problems{}
	if !ValidScope(scope) {
		p.add("scope", "err.token.scope")
	}
	switch n := utf8.RuneCountInString(label); {
	case !utf8.ValidString(label):
		p.add("label", "err.utf8")
	case strings.TrimSpace(label) == "":
		p.add("label", "err.token.label")
	case n > MaxLabel:
		p.add("label", "err.too_long", MaxLabel, n)
	}
	return p.err()
}

// BureauKey is what makes two spellings of a bureau's name the same bureau:
// NFKC (full-width letters and brackets as their plain forms) and white space
// collapsed. "" for a name that is blank.
func BureauKey(name string) string {
	return strings.Join(strings.FieldsFunc(norm.NFKC.String(name), unicode.IsSpace), " ")
}

// ValidateBureauName checks a bureau's name. Errors: *ValidationError on "bureau".
func ValidateBureauName(name string) error {
	p := problems{}
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		p.add("bureau", "err.utf8")
	case BureauKey(name) == "":
		p.add("bureau", "err.bureau.required")
	case n > MaxBureauName:
		p.add("bureau", "err.too_long", MaxBureauName, n)
	}
	return p.err()
}
