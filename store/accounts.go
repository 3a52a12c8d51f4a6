package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	rec "consult/record"
)

// AccountsConfig configures Accounts. Every zero field means the default
// named beside it.
type AccountsConfig struct {
	// Hasher hashes passwords; nil makes one with accounts.DefaultHashParams.
	Hasher *accounts.Hasher
	// Sessions is how long sessions last (zero: accounts' defaults, 30
	// minutes idle and 12 hours in all).
	Sessions accounts.SessionPolicy
	// Logins limits failed logins (see LoginLimits).
	Logins LoginLimits
	// Now is the clock for sessions, lockouts and a token's last use; nil
	// means time.Now. Tests move it instead of sleeping. The times of the
	// changes the staff record keeps (a user's creation and password change,
	// a bureau's or a token's creation, a revocation) are the Redis server's,
	// the same instant as their events.
	Now func() time.Time
}

// Accounts keeps the staff's users, bureaus, API tokens and sessions in Redis.
type Accounts struct {
	rdb redis.UniversalClient
	cfg AccountsConfig
}

// NewAccounts returns Accounts on rdb, which it never dials itself.
func NewAccounts(rdb redis.UniversalClient, cfg AccountsConfig) (*Accounts, error) {
	if cfg.Hasher == nil {
		h, err := accounts.NewHasher(accounts.HashParams{}, 0)
		if err != nil {
			return nil, err
		}
		cfg.Hasher = h
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logins = cfg.Logins.withDefaults()
	return &Accounts{rdb: rdb, cfg: cfg}, nil
}

// Every change to users, bureaus and tokens appends its event to the staff
// record (StaffRecordKey) in the script that makes it, like a consultation's
// changes (see record.go): a change without its event, or an event without its
// change, cannot be left by a crash, a failover or a client that went away. So
// every key those scripts touch carries the hash tag {_staff} (keys.go). The
// events name passwords and tokens never, not even by hash: a token by its id.

// staffTemplate is the template of a staff event, for a script's arguments.
// A bad actor is an error wrapping record.ErrInvalid, before anything is written.
func staffTemplate(op string, actor accounts.Actor, act rec.Action, d rec.Data) (string, error) {
	tpl, err := template(rec.Pending(rec.Staff, actor, act, d))
	if err != nil {
		return "", fmt.Errorf("store: accounts: %s: %w", op, err)
	}
	return tpl, nil
}

// accountErrors are the script error replies of this file and the sentinels
// they stand for.
var accountErrors = map[string]error{
	"EXISTS":    accounts.ErrExists,
	"NOT_FOUND": accounts.ErrNotFound,
	"DISABLED":  accounts.ErrDisabled,
	"NO_BUREAU": &accounts.ValidationError{Fields: map[string]accounts.Problem{"bureaus": {Key: "err.user.no_bureau"}}},
}

// runAccountScript runs a script and turns its error replies into sentinels.
func runAccountScript(ctx context.Context, rdb redis.UniversalClient, sc *redis.Script, op string, keys []string, args ...any) (any, error) {
	v, err := sc.Run(ctx, rdb, keys, args...).Result()
	if err == nil {
		return v, nil
	}
	for code, sentinel := range accountErrors {
		if isScriptError(err, code) {
			return nil, sentinel
		}
	}
	return nil, wrap("accounts: "+op, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v string) time.Time {
	n, _ := strconv.ParseInt(v, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// createUserScript stores a new user unless the name is taken or one of its
// bureaus has no record, and records it (user.created).
//
//	KEYS[1] user hash, KEYS[2] users set, KEYS[3] bureaus hash, KEYS[4] staff record
//	ARGV[1] name, ARGV[2] role, ARGV[3] bureau ids (comma-separated), ARGV[4] password hash,
//	ARGV[5] the event's template
//	returns the creation's time (ms, Redis's clock) | error "EXISTS" | "NO_BUREAU"
var createUserScript = newRecordedScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
for id in string.gmatch(ARGV[3], '[^,]+') do
  if redis.call('HEXISTS', KEYS[3], id) == 0 then return redis.error_reply('NO_BUREAU') end
end
local now = record_now()
record_append(KEYS[4], false, now, ARGV[5])
redis.call('HSET', KEYS[1], 'role', ARGV[2], 'bureaus', ARGV[3], 'disabled', '0', 'epoch', '1',
  'pw', ARGV[4], 'created_ms', now, 'pw_ms', now)
redis.call('SADD', KEYS[2], ARGV[1])
return now
`)

// CreateUser stores a new user with password, and records it as created by
// actor. u.Bureaus are bureau ids (see EnsureBureau). The user's CreatedAt is
// the Redis server's time, the event's. Errors: *accounts.ValidationError,
// accounts.ErrExists, record.ErrInvalid for a bad actor.
func (s *Accounts) CreateUser(ctx context.Context, actor accounts.Actor, u accounts.User, password string) (accounts.User, error) {
	u.Name = accounts.NormalizeName(u.Name)
	u.Disabled, u.Epoch = false, 1
	if err := u.Validate(); err != nil {
		return accounts.User{}, err
	}
	if err := accounts.ValidatePassword(u.Name, password); err != nil {
		return accounts.User{}, err
	}
	op := "create user " + u.Name
	tpl, err := staffTemplate(op, actor, rec.UserCreated, rec.Data{"user": u.Name, "role": string(u.Role), "bureaus": nonNil(u.Bureaus)})
	if err != nil {
		return accounts.User{}, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, password)
	if err != nil {
		return accounts.User{}, err
	}
	v, err := runAccountScript(ctx, s.rdb, createUserScript, op,
		[]string{userHash(u.Name), usersSet, bureausHash, staffRecord}, u.Name, string(u.Role), strings.Join(u.Bureaus, ","), hash, tpl)
	if err != nil {
		return accounts.User{}, err
	}
	now, ok := v.(int64)
	if !ok {
		return accounts.User{}, fmt.Errorf("store: accounts: %s: reply %v", op, v)
	}
	u.CreatedAt = time.UnixMilli(now).UTC()
	u.PasswordChangedAt = u.CreatedAt
	return u, nil
}

// nonNil is l, or an empty list for none: the record writes [] either way.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// userFields are the fields of a user hash that User reads, in order.
var userFields = []string{"role", "bureaus", "disabled", "epoch", "created_ms", "pw_ms", "pw"}

// parseUser reads userFields' values; it returns the password hash apart.
func parseUser(name string, v []any) (accounts.User, string, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	if str(0) == "" {
		return accounts.User{}, "", accounts.ErrNotFound
	}
	u := accounts.User{Name: name, Role: accounts.Role(str(0)), Disabled: str(2) == "1",
		CreatedAt: fromMS(str(4)), PasswordChangedAt: fromMS(str(5))}
	if b := str(1); b != "" {
		u.Bureaus = strings.Split(b, ",")
	}
	u.Epoch, _ = strconv.ParseInt(str(3), 10, 64)
	return u, str(6), nil
}

// User returns the named user, or accounts.ErrNotFound.
func (s *Accounts) User(ctx context.Context, name string) (accounts.User, error) {
	u, _, err := s.user(ctx, name)
	return u, err
}

func (s *Accounts) user(ctx context.Context, name string) (accounts.User, string, error) {
	name = accounts.NormalizeName(name)
	if !accounts.ValidName(name) {
		return accounts.User{}, "", accounts.ErrNotFound
	}
	v, err := s.rdb.HMGet(ctx, userHash(name), userFields...).Result()
	if err != nil {
		return accounts.User{}, "", wrap("accounts: user "+name, err)
	}
	return parseUser(name, v)
}

// Users returns every user, by name.
func (s *Accounts) Users(ctx context.Context) ([]accounts.User, error) {
	names, err := s.rdb.SMembers(ctx, usersSet).Result()
	if err != nil {
		return nil, wrap("accounts: users", err)
	}
	slices.Sort(names)
	cmds := make([]*redis.SliceCmd, len(names))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HMGet(ctx, userHash(n), userFields...)
		}
		return nil
	}); err != nil {
		return nil, wrap("accounts: users", err)
	}
	out := make([]accounts.User, 0, len(names))
	for i, n := range names {
		if u, _, err := parseUser(n, cmds[i].Val()); err == nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// HasAdmin reports whether an admin who is not disabled exists.
func (s *Accounts) HasAdmin(ctx context.Context) (bool, error) {
	us, err := s.Users(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(us, func(u accounts.User) bool { return u.Role == accounts.RoleAdmin && !u.Disabled }), nil
}

// passwordScript replaces a user's password and moves the session epoch on,
// which ends every session of the user, and records it (user.changed).
//
//	KEYS[1] user hash, KEYS[2] staff record
//	ARGV[1] password hash, ARGV[2] the event's template
//	returns the new epoch | error "NOT_FOUND"
var passwordScript = newRecordedScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOT_FOUND') end
local now = record_now()
record_append(KEYS[2], false, now, ARGV[2])
redis.call('HSET', KEYS[1], 'pw', ARGV[1], 'pw_ms', now)
return redis.call('HINCRBY', KEYS[1], 'epoch', 1)
`)

// SetPassword replaces a user's password (the command line's passwd, or the
// user's own change: see ChangePassword), ends every session of the user, and
// records it as changed by actor (data changed: ["password"], nothing of the
// password itself). Errors: *accounts.ValidationError, accounts.ErrNotFound,
// record.ErrInvalid for a bad actor.
func (s *Accounts) SetPassword(ctx context.Context, actor accounts.Actor, name, password string) error {
	name = accounts.NormalizeName(name)
	if err := accounts.ValidatePassword(name, password); err != nil {
		return err
	}
	if !accounts.ValidName(name) {
		return accounts.ErrNotFound
	}
	op := "password " + name
	tpl, err := staffTemplate(op, actor, rec.UserChanged, rec.Data{"user": name, "changed": []string{"password"}})
	if err != nil {
		return err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	_, err = runAccountScript(ctx, s.rdb, passwordScript, op, []string{userHash(name), staffRecord}, hash, tpl)
	return err
}

// disableScript disables a user, moves the session epoch on and records it
// (user.disabled); a user disabled already is left as it is.
//
//	KEYS[1] user hash, KEYS[2] staff record
//	ARGV[1] the event's template
//	returns 1 if disabled now, 0 if it already was | error "NOT_FOUND"
var disableScript = newRecordedScript(`
local d = redis.call('HGET', KEYS[1], 'disabled')
if not d then return redis.error_reply('NOT_FOUND') end
if d == '1' then return 0 end
record_append(KEYS[2], false, record_now(), ARGV[1])
redis.call('HSET', KEYS[1], 'disabled', '1')
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
return 1
`)

// Disable disables a user: every session ends at once and its tokens stop
// working (they are kept, revoked or not, for the listing). The record gets
// one event, by actor; disabling a disabled user is not an error and changes
// and records nothing. Errors: accounts.ErrNotFound, record.ErrInvalid for a
// bad actor.
func (s *Accounts) Disable(ctx context.Context, actor accounts.Actor, name string) error {
	name = accounts.NormalizeName(name)
	if !accounts.ValidName(name) {
		return accounts.ErrNotFound
	}
	op := "disable " + name
	tpl, err := staffTemplate(op, actor, rec.UserDisabled, rec.Data{"user": name})
	if err != nil {
		return err
	}
	_, err = runAccountScript(ctx, s.rdb, disableScript, op, []string{userHash(name), staffRecord}, tpl)
	return err
}

// bureauJSON is a bureau as stored in bureausHash.
type bureauJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedMS int64  `json:"created_ms"`
}

func (b bureauJSON) bureau() accounts.Bureau {
	return accounts.Bureau{ID: b.ID, Name: b.Name, CreatedAt: time.UnixMilli(b.CreatedMS).UTC()}
}

// ensureBureauScript finds a bureau by its name's key, or makes it and
// records it (bureau.created). The event names the new bureau's id, so the
// caller builds it for the id the counter will give, and the script makes the
// bureau only if the counter still stands where the caller read it.
//
//	KEYS[1] bureau names hash, KEYS[2] bureaus hash, KEYS[3] bureau id counter, KEYS[4] staff record
//	ARGV[1] name key, ARGV[2] name as written, ARGV[3] the counter as the caller read it
//	(0 for none), ARGV[4] the event's template, for the bureau "b" .. ARGV[3] + 1
//	returns {bureau JSON, 1 if made now else 0} | error "RETRY" (the counter moved:
//	another bureau was made meanwhile; nothing was written)
var ensureBureauScript = newRecordedScript(`
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return {redis.call('HGET', KEYS[2], id), 0} end
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[3]) then return redis.error_reply('RETRY') end
local now = record_now()
record_append(KEYS[4], false, now, ARGV[4])
id = 'b' .. redis.call('INCR', KEYS[3])
local b = cjson.encode({id = id, name = ARGV[2], created_ms = now})
redis.call('HSET', KEYS[2], id, b)
redis.call('HSET', KEYS[1], ARGV[1], id)
return {b, 1}
`)

// bureauAttempts bounds EnsureBureau's tries when other bureaus are being
// made at the same moment: bureaus are made a few times a year.
const bureauAttempts = 10

// EnsureBureau returns the bureau of that name (accounts.BureauKey decides
// which spellings are the same), making it on first use, by a draft that
// names it or a user who belongs to it, and recording it as created by actor.
// Errors: *accounts.ValidationError, record.ErrInvalid for a bad actor.
func (s *Accounts) EnsureBureau(ctx context.Context, actor accounts.Actor, name string) (accounts.Bureau, error) {
	if err := accounts.ValidateBureauName(name); err != nil {
		return accounts.Bureau{}, err
	}
	name = strings.TrimSpace(name)
	if b, err := s.BureauByName(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		return b, err
	}
	for range bureauAttempts {
		seen, err := s.rdb.Get(ctx, bureauSeq).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return accounts.Bureau{}, wrap("accounts: bureau", err)
		}
		id := "b" + strconv.FormatInt(seen+1, 10)
		tpl, err := staffTemplate("bureau", actor, rec.BureauCreated, rec.Data{"bureau": id, "name": name})
		if err != nil {
			return accounts.Bureau{}, err
		}
		v, err := ensureBureauScript.Run(ctx, s.rdb, []string{bureauNames, bureausHash, bureauSeq, staffRecord},
			accounts.BureauKey(name), name, seen, tpl).Slice()
		if isScriptError(err, "RETRY") {
			continue
		}
		if err != nil {
			return accounts.Bureau{}, wrap("accounts: bureau", err)
		}
		if len(v) != 2 {
			return accounts.Bureau{}, fmt.Errorf("store: accounts: bureau: reply %v", v)
		}
		raw, _ := v[0].(string)
		var b bureauJSON
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return accounts.Bureau{}, fmt.Errorf("store: accounts: bureau: %w", err)
		}
		return b.bureau(), nil
	}
	return accounts.Bureau{}, fmt.Errorf("store: accounts: bureau: the id counter moved %d times", bureauAttempts)
}

// BureauByName returns the bureau of that name without making it, or
// accounts.ErrNotFound.
func (s *Accounts) BureauByName(ctx context.Context, name string) (accounts.Bureau, error) {
	key := accounts.BureauKey(name)
	if key == "" {
		return accounts.Bureau{}, accounts.ErrNotFound
	}
	id, err := s.rdb.HGet(ctx, bureauNames, key).Result()
	if errors.Is(err, redis.Nil) {
		return accounts.Bureau{}, accounts.ErrNotFound
	}
	if err != nil {
		return accounts.Bureau{}, wrap("accounts: bureau", err)
	}
	return s.Bureau(ctx, id)
}

// Bureau returns the bureau with that id, or accounts.ErrNotFound.
func (s *Accounts) Bureau(ctx context.Context, id string) (accounts.Bureau, error) {
	raw, err := s.rdb.HGet(ctx, bureausHash, id).Result()
	if errors.Is(err, redis.Nil) {
		return accounts.Bureau{}, accounts.ErrNotFound
	}
	if err != nil {
		return accounts.Bureau{}, wrap("accounts: bureau "+id, err)
	}
	var b bureauJSON
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		return accounts.Bureau{}, fmt.Errorf("store: accounts: bureau %s: %w", id, err)
	}
	return b.bureau(), nil
}

// Bureaus returns every bureau, by id.
func (s *Accounts) Bureaus(ctx context.Context) ([]accounts.Bureau, error) {
	all, err := s.rdb.HGetAll(ctx, bureausHash).Result()
	if err != nil {
		return nil, wrap("accounts: bureaus", err)
	}
	out := make([]accounts.Bureau, 0, len(all))
	for _, raw := range all {
		var b bureauJSON
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, fmt.Errorf("store: accounts: bureaus: %w", err)
		}
		out = append(out, b.bureau())
	}
	slices.SortFunc(out, func(a, b accounts.Bureau) int {
		na, _ := strconv.Atoi(strings.TrimPrefix(a.ID, "b"))
		nb, _ := strconv.Atoi(strings.TrimPrefix(b.ID, "b"))
		return na - nb
	})
	return out, nil
}

// An API token reads "ct_<id>_<secret>": the id finds its record without a
// scan, the secret (32 random bytes) is what is checked, against a SHA-256 of
// the whole token. A fast hash is enough for 256 random bits; argon2id is for
// what people choose.
const tokenPrefix = "ct_"

func newTokenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// parseToken returns a token's id, or false when it is not one of ours.
func parseToken(tok string) (string, bool) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 43 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// createTokenScript stores a new token for a user who exists and is not
// disabled, and records it (token.created: its id, never the token or its hash).
//
//	KEYS[1] user hash, KEYS[2] token hash, KEYS[3] user's tokens set, KEYS[4] tokens set, KEYS[5] staff record
//	ARGV[1] id, ARGV[2] sha256, ARGV[3] user, ARGV[4] scope, ARGV[5] label, ARGV[6] the event's template
//	returns the creation's time (ms, Redis's clock) | error "NOT_FOUND" | "DISABLED"
var createTokenScript = newRecordedScript(`
local u = redis.call('HMGET', KEYS[1], 'role', 'disabled')
if not u[1] then return redis.error_reply('NOT_FOUND') end
if u[2] == '1' then return redis.error_reply('DISABLED') end
local now = record_now()
record_append(KEYS[5], false, now, ARGV[6])
redis.call('HSET', KEYS[2], 'sha256', ARGV[2], 'user', ARGV[3], 'scope', ARGV[4], 'label', ARGV[5], 'created_ms', now)
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return now
`)

// CreateToken makes an API token for user with scope and a label that says
// what it is for, and records it as created by actor. It returns the token as
// listed and the token itself, which is never stored and cannot be shown
// again. Errors: *accounts.ValidationError, accounts.ErrNotFound (no such
// user), accounts.ErrDisabled, record.ErrInvalid for a bad actor.
func (s *Accounts) CreateToken(ctx context.Context, actor accounts.Actor, user string, scope accounts.Scope, label string) (accounts.Token, string, error) {
	user = accounts.NormalizeName(user)
	label = strings.TrimSpace(label)
	if err := accounts.ValidateToken(scope, label); err != nil {
		return accounts.Token{}, "", err
	}
	if !accounts.ValidName(user) {
		return accounts.Token{}, "", accounts.ErrNotFound
	}
	id := newTokenID()
	tpl, err := staffTemplate("create token", actor, rec.TokenCreated, rec.Data{"token": id, "user": user, "scope": string(scope), "label": label})
	if err != nil {
		return accounts.Token{}, "", err
	}
	secret := tokenPrefix + id + "_" + newSecret()
	v, err := runAccountScript(ctx, s.rdb, createTokenScript, "create token",
		[]string{userHash(user), tokenHash(id), userTokens(user), tokensSet, staffRecord},
		id, sha256Hex(secret), user, string(scope), label, tpl)
	if err != nil {
		return accounts.Token{}, "", err
	}
	now, ok := v.(int64)
	if !ok {
		return accounts.Token{}, "", fmt.Errorf("store: accounts: create token: reply %v", v)
	}
	return accounts.Token{ID: id, User: user, Scope: scope, Label: label, CreatedAt: time.UnixMilli(now).UTC()}, secret, nil
}

// revokeScript marks a token revoked, if it is the user's, and records it
// (token.revoked); a token revoked already is left as it is.
//
//	KEYS[1] token hash, KEYS[2] staff record
//	ARGV[1] the token's user, ARGV[2] the event's template
//	returns 1 if revoked now, 0 if it already was | error "NOT_FOUND"
var revokeScript = newRecordedScript(`
local t = redis.call('HMGET', KEYS[1], 'user', 'revoked_ms')
if not t[1] or t[1] ~= ARGV[1] then return redis.error_reply('NOT_FOUND') end
if t[2] then return 0 end
local now = record_now()
record_append(KEYS[2], false, now, ARGV[2])
redis.call('HSET', KEYS[1], 'revoked_ms', now)
return 1
`)

// RevokeToken revokes a token and records it as revoked by actor. owner, when
// not "", must be the token's user (a person revoking one of their own); ""
// revokes anyone's (an admin, the command line). Revoking twice is not an
// error, and changes and records nothing. Errors: accounts.ErrNotFound,
// record.ErrInvalid for a bad actor.
func (s *Accounts) RevokeToken(ctx context.Context, actor accounts.Actor, id, owner string) error {
	if _, err := hex.DecodeString(id); err != nil || len(id) != 16 {
		return accounts.ErrNotFound
	}
	op := "revoke token " + id
	// The event names the token's user, read first: a token's user never
	// changes, and the script checks it again.
	user, err := s.rdb.HGet(ctx, tokenHash(id), "user").Result()
	if errors.Is(err, redis.Nil) || (err == nil && owner != "" && user != owner) {
		return accounts.ErrNotFound
	}
	if err != nil {
		return wrap("accounts: "+op, err)
	}
	tpl, err := staffTemplate(op, actor, rec.TokenRevoked, rec.Data{"token": id, "user": user})
	if err != nil {
		return err
	}
	_, err = runAccountScript(ctx, s.rdb, revokeScript, op, []string{tokenHash(id), staffRecord}, user, tpl)
	return err
}

var tokenFields = []string{"sha256", "user", "scope", "label", "created_ms", "used_ms", "revoked_ms"}

func parseTokenFields(id string, v []any) (accounts.Token, string, bool) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	if str(1) == "" {
		return accounts.Token{}, "", false
	}
	return accounts.Token{ID: id, User: str(1), Scope: accounts.Scope(str(2)), Label: str(3),
		CreatedAt: fromMS(str(4)), LastUsedAt: fromMS(str(5)), RevokedAt: fromMS(str(6))}, str(0), true
}

// Tokens lists the tokens of user ("" for everyone's), revoked ones
// included, newest first.
func (s *Accounts) Tokens(ctx context.Context, user string) ([]accounts.Token, error) {
	set := tokensSet
	if user != "" {
		user = accounts.NormalizeName(user)
		if !accounts.ValidName(user) {
			return nil, accounts.ErrNotFound
		}
		set = userTokens(user)
	}
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, wrap("accounts: tokens", err)
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, tokenHash(id), tokenFields...)
		}
		return nil
	}); err != nil {
		return nil, wrap("accounts: tokens", err)
	}
	out := make([]accounts.Token, 0, len(ids))
	for i, id := range ids {
		if t, _, ok := parseTokenFields(id, cmds[i].Val()); ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b accounts.Token) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// TokenPrincipal returns who a Bearer token stands for: its user, with the
// token's scope. A token that is malformed, unknown, revoked, or whose user
// is disabled or gone is accounts.ErrUnauthenticated. Its last use is noted
// (at most once a minute: see accounts.Touch).
func (s *Accounts) TokenPrincipal(ctx context.Context, tok string) (accounts.Principal, error) {
	id, ok := parseToken(tok)
	if !ok {
		return accounts.Principal{}, accounts.ErrUnauthenticated
	}
	v, err := s.rdb.HMGet(ctx, tokenHash(id), tokenFields...).Result()
	if err != nil {
		return accounts.Principal{}, wrap("accounts: token", err)
	}
	t, sum, ok := parseTokenFields(id, v)
	if !ok || subtle.ConstantTimeCompare([]byte(sum), []byte(sha256Hex(tok))) != 1 || t.Revoked() {
		return accounts.Principal{}, accounts.ErrUnauthenticated
	}
	u, err := s.User(ctx, t.User)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && u.Disabled) {
		return accounts.Principal{}, accounts.ErrUnauthenticated
	}
	if err != nil {
		return accounts.Principal{}, err
	}
	if now := s.cfg.Now(); now.Sub(t.LastUsedAt) >= accounts.Touch {
		// Only a note: a request is not refused because it could not be written.
		_ = s.rdb.HSet(ctx, tokenHash(id), "used_ms", ms(now)).Err()
	}
	return accounts.UserPrincipal(u, t.Scope, false), nil
}
