package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	rec "consult/record"
)

// LoginLimits bound password guessing. A zero field is the default beside it.
type LoginLimits struct {
	// PerAccount failed logins on one account within Window lock the account
	// for Lockout; default 5.
	PerAccount int
	// PerAddress failed logins from one client (its keyed hash), whatever the
	// accounts, lock the client out for Lockout; default 20. Per address
	// alone would let a botnet guess; per account alone, one address try a
	// password on every account.
	PerAddress int
	// Window, default 15 minutes; Lockout, default 15 minutes.
	Window, Lockout time.Duration
}

func (l LoginLimits) withDefaults() LoginLimits {
	if l.PerAccount <= 0 {
		l.PerAccount = 5
	}
	if l.PerAddress <= 0 {
		l.PerAddress = 20
	}
	if l.Window <= 0 {
		l.Window = 15 * time.Minute
	}
	if l.Lockout <= 0 {
		l.Lockout = 15 * time.Minute
	}
	return l
}

// failScript counts one failed login against an account or a client, and
// locks it once there are max failures within the window. An account's lockout
// is recorded in the staff record (user.locked_out, by the actor "system": the
// guesser is no one we know); a client's is not, since it names a client by
// the hash of its address, and the record is kept for good. The lockout's
// times come from the caller's clock, which decides it; the key's TTL only
// clears it away. The event's time is Redis's, like every event's.
//
//	KEYS[1] failure record, KEYS[2] staff record (an account's failures only)
//	ARGV[1] now_ms, ARGV[2] window_ms, ARGV[3] max failures, ARGV[4] lockout_ms,
//	ARGV[5] the lockout event's template (with KEYS[2])
//	returns {failures in the window, locked until ms (0: not locked), 1 if locked by this failure}
var failScript = newRecordedScript(`
local now, window, maxn, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local r = redis.call('HMGET', KEYS[1], 'n', 'first_ms', 'until_ms')
local n, first, untilms = tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0
if now - first >= window then n, first = 0, now end
n = n + 1
local locked = 0
if n >= maxn then
  untilms, n, first, locked = now + lockout, 0, now, 1
  if KEYS[2] then record_append(KEYS[2], false, record_now(), ARGV[5]) end
end
redis.call('HSET', KEYS[1], 'n', n, 'first_ms', first, 'until_ms', untilms)
redis.call('PEXPIRE', KEYS[1], 2 * math.max(window, lockout))
return {n, untilms, locked}
`)

// lockedUntil returns when the record's lockout ends (zero: none).
func (s *Accounts) lockedUntil(ctx context.Context, key string) (time.Time, error) {
	v, err := s.rdb.HGet(ctx, key, "until_ms").Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, wrap("accounts: login limit", err)
	}
	until := fromMS(v)
	if !s.cfg.Now().Before(until) {
		return time.Time{}, nil
	}
	return until, nil
}

// failClient counts a failed login from a client.
func (s *Accounts) failClient(ctx context.Context, client string) error {
	return s.runFail(ctx, []string{clientFailures(client)}, s.cfg.Logins.PerAddress, "")
}

// failAccount counts a failed login on an existing user's account; a lockout
// it causes goes into the staff record with it.
func (s *Accounts) failAccount(ctx context.Context, name string) error {
	l := s.cfg.Logins
	tpl, err := staffTemplate("login limit", rec.System, rec.UserLockedOut,
		rec.Data{"user": name, "failures": l.PerAccount, "lockout_ms": l.Lockout.Milliseconds()})
	if err != nil {
		return err
	}
	return s.runFail(ctx, []string{accountFailures(name), staffRecord}, l.PerAccount, tpl)
}

func (s *Accounts) runFail(ctx context.Context, keys []string, maxn int, tpl string) error {
	l := s.cfg.Logins
	if err := failScript.Run(ctx, s.rdb, keys, ms(s.cfg.Now()), l.Window.Milliseconds(), maxn, l.Lockout.Milliseconds(), tpl).Err(); err != nil {
		return wrap("accounts: login limit", err)
	}
	return nil
}

// Login checks a user's password and begins a session with a new id. client is
// the caller's keyed hash (never an address). A locked account or client is
// refused before the password is looked at, right or wrong. Errors:
// *accounts.LockedError, accounts.ErrBadCredentials (no such user or the
// wrong password: never said which), accounts.ErrDisabled (the right password
// of a disabled user).
func (s *Accounts) Login(ctx context.Context, name, password, client string) (accounts.Session, error) {
	name = accounts.NormalizeName(name)
	known := accounts.ValidName(name)
	addrKey, acctKey := clientFailures(client), accountFailures(name)
	if until, err := s.lockedUntil(ctx, addrKey); err != nil || !until.IsZero() {
		if err != nil {
			return accounts.Session{}, err
		}
		return accounts.Session{}, &accounts.LockedError{Until: until, Address: true}
	}
	if known {
		if until, err := s.lockedUntil(ctx, acctKey); err != nil || !until.IsZero() {
			if err != nil {
				return accounts.Session{}, err
			}
			return accounts.Session{}, &accounts.LockedError{Until: until}
		}
	}
	var (
		u    accounts.User
		hash string
	)
	if known {
		var err error
		u, hash, err = s.user(ctx, name)
		if err != nil && !errors.Is(err, accounts.ErrNotFound) {
			return accounts.Session{}, err
		}
	}
	ok, err := s.cfg.Hasher.Check(ctx, password, hash) // "" checks a dummy: as slow
	if err != nil {
		return accounts.Session{}, err
	}
	if !ok {
		if err := s.failClient(ctx, client); err != nil {
			return accounts.Session{}, err
		}
		if hash != "" {
			if err := s.failAccount(ctx, name); err != nil {
				return accounts.Session{}, err
			}
		}
		return accounts.Session{}, accounts.ErrBadCredentials
	}
	if u.Disabled {
		return accounts.Session{}, accounts.ErrDisabled
	}
	// Past failures on the account no longer count; the client's still do, or
	// one known password would reset a guesser's count on every other account.
	if err := s.rdb.Del(ctx, acctKey).Err(); err != nil {
		return accounts.Session{}, wrap("accounts: login", err)
	}
	return s.newSession(ctx, u)
}

// newSession stores a session for u with a new random id.
func (s *Accounts) newSession(ctx context.Context, u accounts.User) (accounts.Session, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	sess := accounts.Session{ID: base64.RawURLEncoding.EncodeToString(b[:]), User: u.Name, Epoch: u.Epoch, Created: now, Seen: now}
	key := sessionHash(sha256Hex(sess.ID))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "user", u.Name, "epoch", u.Epoch, "created_ms", ms(now), "seen_ms", ms(now))
		p.PExpire(ctx, key, s.ttl(sess))
		return nil
	})
	if err != nil {
		return accounts.Session{}, wrap("accounts: new session", err)
	}
	return sess, nil
}

// ttl is how long Redis keeps a session: until it expires by the policy, and
// a minute more, so that the policy, not the TTL, is what ends it.
func (s *Accounts) ttl(sess accounts.Session) time.Duration {
	return max(s.cfg.Sessions.Expires(sess).Sub(s.cfg.Now()), 0) + time.Minute
}

// validSessionID reports whether id can be one of ours: 43 base64url characters.
func validSessionID(id string) bool {
	if len(id) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// Session returns who a session cookie stands for. A session that is unknown,
// expired (idle or absolute, by the injected clock), or from before the
// user's last password change or disabling is accounts.ErrUnauthenticated,
// and is deleted. A session in use has its last use noted (at most once a
// minute).
func (s *Accounts) Session(ctx context.Context, id string) (accounts.Principal, accounts.Session, error) {
	if !validSessionID(id) {
		return accounts.Principal{}, accounts.Session{}, accounts.ErrUnauthenticated
	}
	key := sessionHash(sha256Hex(id))
	v, err := s.rdb.HMGet(ctx, key, "user", "epoch", "created_ms", "seen_ms").Result()
	if err != nil {
		return accounts.Principal{}, accounts.Session{}, wrap("accounts: session", err)
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	if str(0) == "" {
		return accounts.Principal{}, accounts.Session{}, accounts.ErrUnauthenticated
	}
	sess := accounts.Session{ID: id, User: str(0), Created: fromMS(str(2)), Seen: fromMS(str(3))}
	sess.Epoch, _ = strconv.ParseInt(str(1), 10, 64)
	u, err := s.User(ctx, sess.User)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return accounts.Principal{}, accounts.Session{}, err
	}
	now := s.cfg.Now()
	if err != nil || s.cfg.Sessions.Check(sess, u, now) != nil {
		_ = s.rdb.Del(ctx, key).Err() // over either way; the TTL clears it if this fails
		return accounts.Principal{}, accounts.Session{}, accounts.ErrUnauthenticated
	}
	if now.Sub(sess.Seen) >= accounts.Touch {
		sess.Seen = now.UTC().Truncate(time.Millisecond)
		_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, "seen_ms", ms(sess.Seen))
			p.PExpire(ctx, key, s.ttl(sess))
			return nil
		})
	}
	return accounts.UserPrincipal(u, accounts.ScopeWrite, true), sess, nil
}

// Logout ends a session. Ending one that is gone is not an error.
func (s *Accounts) Logout(ctx context.Context, id string) error {
	if !validSessionID(id) {
		return nil
	}
	if err := s.rdb.Del(ctx, sessionHash(sha256Hex(id))).Err(); err != nil {
		return wrap("accounts: logout", err)
	}
	return nil
}

// ChangePassword is a signed-in user changing their own password: the current
// one is checked first (a session left open on a shared computer must not be
// enough). Every session of the user ends, this one too, and a new one begins
// for the browser that made the change. Errors: *accounts.ValidationError
// (field "current" for a wrong current password, "password" for the new one).
func (s *Accounts) ChangePassword(ctx context.Context, name, current, password string) (accounts.Session, error) {
	u, hash, err := s.user(ctx, name)
	if err != nil {
		return accounts.Session{}, err
	}
	// A wrong current password counts as a failed login, or an open session
	// would be a way to guess the password without a limit.
	acctKey := accountFailures(u.Name)
	if until, err := s.lockedUntil(ctx, acctKey); err != nil || !until.IsZero() {
		if err != nil {
			return accounts.Session{}, err
		}
		return accounts.Session{}, &accounts.LockedError{Until: until}
	}
	ok, err := s.cfg.Hasher.Check(ctx, current, hash)
	if err != nil {
		return accounts.Session{}, err
	}
	if !ok {
		if err := s.failAccount(ctx, u.Name); err != nil {
			return accounts.Session{}, err
		}
		return accounts.Session{}, &accounts.ValidationError{Fields: map[string]accounts.Problem{"current": {Key: "err.password.current"}}}
	}
	if err := s.SetPassword(ctx, accounts.UserActor(u.Name), u.Name, password); err != nil {
		return accounts.Session{}, err
	}
	if u, err = s.User(ctx, u.Name); err != nil {
		return accounts.Session{}, fmt.Errorf("store: accounts: change password: %w", err)
	}
	return s.newSession(ctx, u)
}
