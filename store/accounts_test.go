package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	"consult/internal/redistest"
	rec "consult/record"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// staffKinds is the staff record in short: "action subject by actor", one a
// line, where the subject is the event's user, bureau or token.
func staffKinds(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	var k []string
	for _, e := range allEvents(t, NewRecords(rdb), rec.Staff) {
		subject := e.Data["user"]
		for _, f := range []string{"token", "bureau"} {
			if v, ok := e.Data[f]; ok {
				subject = v
			}
		}
		k = append(k, fmt.Sprintf("%s %v by %s", e.Action, subject, e.Actor))
	}
	return strings.Join(k, "\n")
}

func newTestAccounts(t *testing.T, rdb redis.UniversalClient) (*Accounts, *testClock) {
	t.Helper()
	h, err := accounts.NewHasher(accounts.HashParams{Memory: 64, Iterations: 1, Parallelism: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	a, err := NewAccounts(rdb, AccountsConfig{Hasher: h, Now: clock.Now,
		Sessions: accounts.SessionPolicy{Idle: 30 * time.Minute, Absolute: 2 * time.Hour},
		Logins:   LoginLimits{PerAccount: 3, PerAddress: 5, Window: 10 * time.Minute, Lockout: 15 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return a, clock
}

const pw = "a long enough password"

func TestAccounts(t *testing.T)        { testAccounts(t, redistest.Start(t).Client(t)) }
func TestAccountsCluster(t *testing.T) { testAccounts(t, redistest.StartCluster(t).Client(t)) }

// testAccounts: users, bureaus and tokens from creation to revocation, with
// the event each change appends to the staff record.
func testAccounts(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	a, clock := newTestAccounts(t, rdb)
	console := accounts.ConsoleActor("root")

	b1, err := a.EnsureBureau(ctx, console, "洪雅县司法局")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := a.EnsureBureau(ctx, accounts.ActorAdminToken, " 洪雅县司法局\u3000"); err != nil || again != b1 {
		t.Fatalf("same bureau again: %+v %v, want %+v", again, err, b1)
	}
	if got, err := a.BureauByName(ctx, "洪雅县司法局"); err != nil || got.ID != b1.ID {
		t.Fatalf("by name: %+v %v", got, err)
	}
	if _, err := a.BureauByName(ctx, "某市交通运输局"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("unknown bureau: %v", err)
	}
	b2, _ := a.EnsureBureau(ctx, console, "某市交通运输局")
	if bs, _ := a.Bureaus(ctx); len(bs) != 2 || bs[0].ID != "b1" || bs[1].ID != "b2" || b2.ID != "b2" {
		t.Fatalf("bureaus %+v", bs)
	}

	if has, err := a.HasAdmin(ctx); has || err != nil {
		t.Fatalf("HasAdmin before any: %v %v", has, err)
	}
	admin, err := a.CreateUser(ctx, console, accounts.User{Name: " Admin ", Role: accounts.RoleAdmin}, pw)
	if err != nil || admin.Name != "admin" {
		t.Fatalf("create admin: %+v %v", admin, err)
	}
	if has, _ := a.HasAdmin(ctx); !has {
		t.Fatal("HasAdmin after one")
	}
	if _, err := a.CreateUser(ctx, console, accounts.User{Name: "admin", Role: accounts.RoleReviewer}, pw); !errors.Is(err, accounts.ErrExists) {
		t.Fatalf("taken name: %v", err)
	}
	var ve *accounts.ValidationError
	if _, err := a.CreateUser(ctx, console, accounts.User{Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{"b9"}}, pw); !errors.As(err, &ve) || ve.Fields["bureaus"].Key != "err.user.no_bureau" {
		t.Fatalf("unknown bureau id: %v", err)
	}
	if _, err := a.CreateUser(ctx, console, accounts.User{Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{b1.ID}}, "short"); !errors.As(err, &ve) || ve.Fields["password"].Key != "err.password.short" {
		t.Fatalf("short password: %v", err)
	}
	before := redisNow(t, rdb)
	made, err := a.CreateUser(ctx, console, accounts.User{Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{b1.ID, b2.ID}}, pw)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.User(ctx, "zhang")
	if err != nil || u.Role != accounts.RoleBureau || strings.Join(u.Bureaus, ",") != "b1,b2" || u.Disabled ||
		!u.CreatedAt.Equal(made.CreatedAt) || u.CreatedAt.Before(before) || u.CreatedAt.After(redisNow(t, rdb)) {
		t.Fatalf("user %+v %v: want CreatedAt %v, by Redis's clock", u, err, made.CreatedAt)
	}
	if us, _ := a.Users(ctx); len(us) != 2 || us[0].Name != "admin" || us[1].Name != "zhang" {
		t.Fatalf("users %+v", us)
	}

	// A token: shown once, kept as a hash, scoped, noted when used, revocable.
	tok, secret, err := a.CreateToken(ctx, accounts.UserActor("zhang"), "zhang", accounts.ScopeRead, "意见导出")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "ct_"+tok.ID+"_") {
		t.Fatalf("token %q for id %s", secret, tok.ID)
	}
	for _, k := range rdb.Keys(ctx, "*").Val() { // one node's keys on a Cluster: the {_staff} slot is on one
		if v := rdb.HGetAll(ctx, k).Val(); strings.Contains(strings.Join(mapValues(v), " "), secret[10:]) {
			t.Fatalf("the token is stored in %s", k)
		}
	}
	clock.Add(5 * time.Minute)
	p, err := a.TokenPrincipal(ctx, secret)
	if err != nil || p.User != "zhang" || p.Scope != accounts.ScopeRead || p.Session || p.Actor != "user:zhang" {
		t.Fatalf("principal %+v %v", p, err)
	}
	if ts, _ := a.Tokens(ctx, "zhang"); len(ts) != 1 || !ts[0].LastUsedAt.Equal(clock.Now()) || ts[0].Label != "意见导出" {
		t.Fatalf("tokens %+v", ts)
	}
	other := "A" // the last character changed (it is one of 16: the last of 43 carries 4 bits)
	if strings.HasSuffix(secret, "A") {
		other = "E"
	}
	for _, bad := range []string{"", "ct_", secret + "x", secret[:len(secret)-1] + other, "Bearer " + secret, "ct_" + tok.ID + "_" + strings.Repeat("A", 43)} {
		if _, err := a.TokenPrincipal(ctx, bad); !errors.Is(err, accounts.ErrUnauthenticated) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if _, _, err := a.CreateToken(ctx, console, "nobody", accounts.ScopeRead, "x"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("token for nobody: %v", err)
	}
	if err := a.RevokeToken(ctx, accounts.UserActor("admin"), tok.ID, "admin"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("revoking someone else's as a user: %v", err)
	}
	if err := a.RevokeToken(ctx, accounts.UserActor("zhang"), tok.ID, "zhang"); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, console, tok.ID, ""); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := a.TokenPrincipal(ctx, secret); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}

	// Disabling stops the user's tokens and sessions.
	_, secret2, _ := a.CreateToken(ctx, console, "zhang", accounts.ScopeWrite, "ci")
	sess, err := a.Login(ctx, "zhang", pw, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Session(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.Disable(ctx, console, "zhang"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TokenPrincipal(ctx, secret2); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("disabled user's token: %v", err)
	}
	if _, _, err := a.Session(ctx, sess.ID); !errors.Is(err, accounts.ErrUnauthenticated) {
		t.Fatalf("disabled user's session: %v", err)
	}
	if _, err := a.Login(ctx, "zhang", pw, "client-1"); !errors.Is(err, accounts.ErrDisabled) {
		t.Fatalf("disabled user's login: %v", err)
	}
	if _, _, err := a.CreateToken(ctx, console, "zhang", accounts.ScopeRead, "x"); !errors.Is(err, accounts.ErrDisabled) {
		t.Fatalf("token for a disabled user: %v", err)
	}
	if all, _ := a.Tokens(ctx, ""); len(all) != 2 {
		t.Fatalf("all tokens: %+v", all)
	}

	want := strings.Join([]string{
		"bureau.created b1 by console:root",
		"bureau.created b2 by console:root",
		"user.created admin by console:root",
		"user.created zhang by console:root",
		"token.created " + tok.ID + " by user:zhang",
		"token.revoked " + tok.ID + " by user:zhang",
		"token.created " + strings.Split(secret2, "_")[1] + " by console:root",
		"user.disabled zhang by console:root",
	}, "\n")
	if got := staffKinds(t, rdb); got != want {
		t.Errorf("staff record:\n%s\nwant:\n%s", got, want)
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestSessions: a new id at every login; idle and absolute expiry by the
// injected clock; logout; a password change ends every session.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	a, clock := newTestAccounts(t, rdb)
	if _, err := a.CreateUser(ctx, accounts.ConsoleActor("test"), accounts.User{Name: "li", Role: accounts.RoleReviewer}, pw); err != nil {
		t.Fatal(err)
	}
	s1, err := a.Login(ctx, "li", pw, "c")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a.Login(ctx, "LI", pw, "c")
	if s1.ID == s2.ID || len(s1.ID) != 43 {
		t.Fatalf("ids %q %q", s1.ID, s2.ID)
	}
	if n := len(rdb.Keys(ctx, "*"+s1.ID+"*").Val()); n != 0 {
		t.Fatal("a session id is in a key")
	}
	live := func(id string) bool {
		t.Helper()
		_, _, err := a.Session(ctx, id)
		if err != nil && !errors.Is(err, accounts.ErrUnauthenticated) {
			t.Fatal(err)
		}
		return err == nil
	}
	// Idle: used every 20 minutes it lives; 30 minutes unused it is over.
	for range 5 {
		clock.Add(20 * time.Minute)
		if !live(s1.ID) {
			t.Fatalf("used session over at %s", clock.Now())
		}
	}
	if live(s2.ID) {
		t.Fatal("idle session lives")
	}
	// Absolute: two hours after login, used or not.
	clock.Add(19 * time.Minute) // 1h59 after login
	if !live(s1.ID) {
		t.Fatal("session over before its time")
	}
	clock.Add(time.Minute)
	if live(s1.ID) {
		t.Fatal("session past its absolute expiry lives")
	}

	s3, _ := a.Login(ctx, "li", pw, "c")
	s4, _ := a.Login(ctx, "li", pw, "c")
	if err := a.Logout(ctx, s3.ID); err != nil {
		t.Fatal(err)
	}
	if live(s3.ID) || !live(s4.ID) {
		t.Fatal("logout")
	}
	// A wrong current password changes nothing.
	var ve *accounts.ValidationError
	if _, err := a.ChangePassword(ctx, "li", "not it at all", "a new long password"); !errors.As(err, &ve) || ve.Fields["current"].Key == "" {
		t.Fatalf("wrong current: %v", err)
	}
	s5, err := a.ChangePassword(ctx, "li", pw, "a new long password")
	if err != nil {
		t.Fatal(err)
	}
	if live(s4.ID) || !live(s5.ID) {
		t.Fatal("after a password change: the old session lives, or the new one does not")
	}
	if _, err := a.Login(ctx, "li", pw, "c"); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("old password: %v", err)
	}
	if err := a.SetPassword(ctx, "console:root", "li", "yet another password"); err != nil {
		t.Fatal(err)
	}
	if live(s5.ID) {
		t.Fatal("session lives after passwd")
	}
}

// TestLoginLimits: an account locks after its failures, right password or
// not, until the lockout passes; a client locks after its own, whatever the
// accounts; a success clears the account's count.
func TestLoginLimits(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	a, clock := newTestAccounts(t, rdb)
	for _, n := range []string{"wang", "zhao"} {
		if _, err := a.CreateUser(ctx, accounts.ConsoleActor("test"), accounts.User{Name: n, Role: accounts.RoleReviewer}, pw); err != nil {
			t.Fatal(err)
		}
	}
	login := func(name, pass, client string) error {
		t.Helper()
		_, err := a.Login(ctx, name, pass, client)
		return err
	}
	// Two failures, a success, two failures: not locked (the success cleared them).
	for _, p := range []string{"x", "y", pw, "x", "y"} {
		if err := login("wang", p, "c1"); (p == pw) != (err == nil) {
			t.Fatalf("%q: %v", p, err)
		}
	}
	if err := login("wang", pw, "c1"); err != nil {
		t.Fatalf("after two failures: %v", err)
	}
	for range 2 {
		_ = login("wang", "wrong", "c2")
	}
	if err := login("wang", "wrong", "c3"); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("third failure: %v", err)
	}
	var le *accounts.LockedError
	if err := login("wang", pw, "c4"); !errors.As(err, &le) || le.Address || !le.Until.Equal(clock.Now().Add(15*time.Minute)) {
		t.Fatalf("locked account, right password: %v", err)
	}
	if k := staffKinds(t, rdb); !strings.Contains(k, "user.locked_out wang by system") {
		t.Errorf("no lockout event: %s", k)
	}
	if err := login("zhao", pw, "c4"); err != nil {
		t.Fatalf("another account: %v", err)
	}
	clock.Add(15 * time.Minute)
	if err := login("wang", pw, "c4"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}

	// One client, many accounts (most of them not there): locked at 5.
	for i, n := range []string{"zhao", "nobody", "admin", "Not A Name!", "wang"} {
		if err := login(n, "guess", "c9"); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if err := login("zhao", pw, "c9"); !errors.As(err, &le) || !le.Address {
		t.Fatalf("locked client: %v", err)
	}
	if err := login("zhao", pw, "c8"); err != nil {
		t.Fatalf("another client: %v", err)
	}
	// Failures spread wider than the window never lock.
	for range 6 {
		clock.Add(11 * time.Minute)
		_ = login("zhao", "wrong", "c7")
		_ = login("zhao", "wrong", "c7")
	}
	if err := login("zhao", pw, "c7"); err != nil {
		t.Fatalf("slow failures locked: %v", err)
	}
	// One lockout of an account, recorded; the client's lockout is not (the
	// record is kept for good, and a client is the hash of an address).
	want := "user.created wang by console:test\nuser.created zhao by console:test\nuser.locked_out wang by system"
	if k := staffKinds(t, rdb); k != want {
		t.Errorf("staff record:\n%s\nwant:\n%s", k, want)
	}
}

func TestStaffRecord(t *testing.T)        { testStaffRecord(t, redistest.Start(t).Client(t)) }
func TestStaffRecordCluster(t *testing.T) { testStaffRecord(t, redistest.StartCluster(t).Client(t)) }

// testStaffRecord: each change to users, bureaus and tokens appears as exactly
// one event in the staff record, in order, with its actor and the Redis
// server's time, and with no password, token or hash of either in it; a change
// refused, or one that changes nothing, appears not at all. On a Cluster too,
// where a script touching keys of two slots would fail.
func testStaffRecord(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	a, _ := newTestAccounts(t, rdb)
	rs := NewRecords(rdb)
	console, admin, li := accounts.ConsoleActor("root"), accounts.UserActor("admin"), accounts.UserActor("li")
	var (
		b1        accounts.Bureau
		tok       accounts.Token
		secret    string
		secrets   = []string{pw, "a new long password", "yet another password"}
		createdAt = map[string]time.Time{} // what the change itself says of its time
	)
	type want struct {
		action rec.Action
		actor  rec.Actor
		data   rec.Data // the members to check
	}
	steps := []struct {
		name string
		do   func() error
		want []want
	}{
		{"bureau created", func() (err error) {
			b1, err = a.EnsureBureau(ctx, console, "洪雅县司法局")
			createdAt["bureau"] = b1.CreatedAt
			return err
		}, []want{{rec.BureauCreated, console, rec.Data{"bureau": "b1", "name": "洪雅县司法局"}}}},
		{"bureau named again", func() error {
			b, err := a.EnsureBureau(ctx, admin, "洪雅县司法局 ")
			if err == nil && b != b1 {
				err = fmt.Errorf("bureau %+v, want %+v", b, b1)
			}
			return err
		}, nil},
		{"admin added", func() error {
			u, err := a.CreateUser(ctx, console, accounts.User{Name: "admin", Role: accounts.RoleAdmin}, pw)
			createdAt["user"] = u.CreatedAt
			return err
		}, []want{{rec.UserCreated, console, rec.Data{"user": "admin", "role": "admin"}}}},
		{"user added", func() error {
			_, err := a.CreateUser(ctx, admin, accounts.User{Name: "li", Role: accounts.RoleBureau, Bureaus: []string{b1.ID}}, pw)
			return err
		}, []want{{rec.UserCreated, admin, rec.Data{"user": "li", "role": "bureau"}}}},
		{"refused: taken name, no bureau, bad actor", func() error {
			if _, err := a.CreateUser(ctx, admin, accounts.User{Name: "li", Role: accounts.RoleReviewer}, pw); !errors.Is(err, accounts.ErrExists) {
				return fmt.Errorf("taken name: %v", err)
			}
			var ve *accounts.ValidationError
			if _, err := a.CreateUser(ctx, admin, accounts.User{Name: "wu", Role: accounts.RoleBureau, Bureaus: []string{"b7"}}, pw); !errors.As(err, &ve) {
				return fmt.Errorf("no such bureau: %v", err)
			}
			for name, do := range map[string]func(rec.Actor) error{
				"user": func(a2 rec.Actor) error {
					_, err := a.CreateUser(ctx, a2, accounts.User{Name: "wu", Role: accounts.RoleReviewer}, pw)
					return err
				},
				"bureau":   func(a2 rec.Actor) error { _, err := a.EnsureBureau(ctx, a2, "某市交通运输局"); return err },
				"password": func(a2 rec.Actor) error { return a.SetPassword(ctx, a2, "li", "a new long password") },
				"token": func(a2 rec.Actor) error {
					_, _, err := a.CreateToken(ctx, a2, "li", accounts.ScopeRead, "x")
					return err
				},
				"disable": func(a2 rec.Actor) error { return a.Disable(ctx, a2, "li") },
			} {
				for _, bad := range []rec.Actor{"", "test", "user:a b", "console:"} {
					if err := do(bad); !errors.Is(err, rec.ErrInvalid) {
						return fmt.Errorf("%s by %q: %v, want record.ErrInvalid", name, bad, err)
					}
				}
			}
			if _, err := a.User(ctx, "wu"); !errors.Is(err, accounts.ErrNotFound) {
				return fmt.Errorf("a refused user was stored: %v", err)
			}
			if _, err := a.BureauByName(ctx, "某市交通运输局"); !errors.Is(err, accounts.ErrNotFound) {
				return fmt.Errorf("a refused bureau was stored: %v", err)
			}
			return nil
		}, nil},
		{"password changed by the user", func() error {
			_, err := a.ChangePassword(ctx, "li", pw, "a new long password")
			return err
		}, []want{{rec.UserChanged, li, rec.Data{"user": "li"}}}},
		{"password set at the console", func() error {
			return a.SetPassword(ctx, console, "li", "yet another password")
		}, []want{{rec.UserChanged, console, rec.Data{"user": "li"}}}},
		{"token created", func() (err error) {
			tok, secret, err = a.CreateToken(ctx, li, "li", accounts.ScopeRead, "意见导出")
			secrets = append(secrets, secret, sha256Hex(secret))
			createdAt["token"] = tok.CreatedAt
			return err
		}, []want{{rec.TokenCreated, li, rec.Data{"user": "li", "scope": "read", "label": "意见导出"}}}},
		{"token revoked", func() error {
			if err := a.RevokeToken(ctx, admin, tok.ID, "admin"); !errors.Is(err, accounts.ErrNotFound) {
				return fmt.Errorf("someone else's token as its owner: %v", err)
			}
			return a.RevokeToken(ctx, li, tok.ID, "li")
		}, []want{{rec.TokenRevoked, li, rec.Data{"user": "li"}}}},
		{"token revoked again", func() error { return a.RevokeToken(ctx, admin, tok.ID, "") }, nil},
		{"locked out", func() error {
			for i := range 3 {
				if _, err := a.Login(ctx, "li", "not the password", fmt.Sprint("c", i)); !errors.Is(err, accounts.ErrBadCredentials) {
					return fmt.Errorf("failure %d: %v", i, err)
				}
			}
			var le *accounts.LockedError
			if _, err := a.Login(ctx, "li", "yet another password", "c9"); !errors.As(err, &le) {
				return fmt.Errorf("not locked: %v", err)
			}
			return nil
		}, []want{{rec.UserLockedOut, rec.System, rec.Data{"user": "li", "failures": int64(3), "lockout_ms": int64(15 * 60 * 1000)}}}},
		{"disabled", func() error { return a.Disable(ctx, admin, "li") }, []want{{rec.UserDisabled, admin, rec.Data{"user": "li"}}}},
		{"disabled again", func() error { return a.Disable(ctx, console, "li") }, nil},
		{"nothing for a disabled user", func() error {
			if _, _, err := a.CreateToken(ctx, admin, "li", accounts.ScopeWrite, "x"); !errors.Is(err, accounts.ErrDisabled) {
				return fmt.Errorf("token for a disabled user: %v", err)
			}
			return nil
		}, nil},
	}
	var seen []rec.Event
	for _, st := range steps {
		before := redisNow(t, rdb)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after := redisNow(t, rdb)
		es := allEvents(t, rs, rec.Staff)
		if len(es) < len(seen) || !slices.EqualFunc(es[:len(seen)], seen, func(a, b rec.Event) bool { ha, _ := a.Hash(); hb, _ := b.Hash(); return ha == hb }) {
			t.Fatalf("%s: earlier events changed", st.name)
		}
		added := es[len(seen):]
		if len(added) != len(st.want) {
			t.Fatalf("%s: %d events, want %d: %+v", st.name, len(added), len(st.want), added)
		}
		for i, w := range st.want {
			e := added[i]
			if e.Seq != int64(len(seen)+i+1) || e.Action != w.action || e.Actor != w.actor || e.Intake != "" ||
				e.At.Before(before) || e.At.After(after) {
				t.Errorf("%s: event %+v, want %v by %v at %v to %v", st.name, e, w.action, w.actor, before, after)
			}
			for k, v := range w.data {
				if e.Data[k] != v {
					t.Errorf("%s: %s = %#v, want %#v", st.name, k, e.Data[k], v)
				}
			}
		}
		seen = es
	}
	// The change and its event carry one instant, Redis's.
	byAction := map[rec.Action]rec.Event{}
	for _, e := range seen {
		if _, ok := byAction[e.Action]; !ok {
			byAction[e.Action] = e
		}
	}
	for what, act := range map[string]rec.Action{"bureau": rec.BureauCreated, "user": rec.UserCreated, "token": rec.TokenCreated} {
		if e := byAction[act]; !e.At.Equal(createdAt[what]) {
			t.Errorf("%s created at %v, its event at %v", what, createdAt[what], e.At)
		}
	}
	if e := byAction[rec.TokenCreated]; e.Data["token"] != tok.ID {
		t.Errorf("token.created names %v, want the id %s", e.Data["token"], tok.ID)
	}
	if e := byAction[rec.UserCreated]; !slices.Equal(e.Data["bureaus"].([]string), []string{}) {
		t.Errorf("an admin's bureaus: %#v", e.Data["bureaus"])
	}
	if e := seen[2]; !slices.Equal(e.Data["bureaus"].([]string), []string{"b1"}) {
		t.Errorf("li's bureaus: %#v", e.Data["bureaus"])
	}
	if ts, _ := a.Tokens(ctx, "li"); len(ts) != 1 || !ts[0].RevokedAt.Equal(seen[6].At) {
		t.Errorf("revoked at %+v, its event at %v", ts, seen[6].At)
	}
	// No password, token, or hash of either, in any event.
	hashes, _ := rdb.HMGet(ctx, userHash("li"), "pw").Result()
	h, _ := hashes[0].(string)
	secrets = append(secrets, h)
	raw, err := rdb.LRange(ctx, StaffRecordKey(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range raw {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(e, sec) {
				t.Fatalf("a secret in the staff record: %s", e)
			}
		}
		if strings.Contains(e, "$argon2") || strings.Contains(e, "ct_") {
			t.Fatalf("a password hash or a token in the staff record: %s", e)
		}
	}
}

// TestBureausAtOnce: replicas making bureaus at the same moment each get an id
// of their own, and the record names each bureau once, by the id it got.
func TestBureausAtOnce(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	stores := []*Accounts{}
	for range 2 {
		a, _ := newTestAccounts(t, c.Client(t))
		stores = append(stores, a)
	}
	const each = 8
	var wg sync.WaitGroup
	got := make(chan accounts.Bureau, 2*each)
	errs := make(chan error, 2*each)
	for r, a := range stores {
		for i := range each {
			wg.Go(func() {
				// The same names from both: each is made once, by whoever comes first.
				b, err := a.EnsureBureau(ctx, accounts.ConsoleActor(fmt.Sprint("r", r)), fmt.Sprint("局", i%each))
				errs <- err
				got <- b
			})
		}
	}
	wg.Wait()
	close(errs)
	close(got)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	byName := map[string]string{}
	for b := range got {
		if id, ok := byName[b.Name]; ok && id != b.ID {
			t.Fatalf("%s is %s and %s", b.Name, id, b.ID)
		}
		byName[b.Name] = b.ID
	}
	es := allEvents(t, NewRecords(c.Client(t)), rec.Staff)
	if len(es) != each || len(byName) != each {
		t.Fatalf("%d events, %d bureaus, want %d", len(es), len(byName), each)
	}
	for i, e := range es {
		if e.Action != rec.BureauCreated || e.Data["bureau"] != byName[e.Data["name"].(string)] || e.Data["bureau"] != fmt.Sprint("b", i+1) {
			t.Errorf("event %+v, bureaus %v", e, byName)
		}
	}
}

// FuzzParseToken: what a Bearer header holds never panics the parser, and what
// it accepts is the shape tokens are made in, its id the part after ct_.
func FuzzParseToken(f *testing.F) {
	f.Add("ct_0123456789abcdef_" + strings.Repeat("A", 43))
	f.Add("ct__")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, ok := parseToken(tok)
		if ok && (len(tok) != 3+16+1+43 || !strings.HasPrefix(tok, "ct_"+id+"_")) {
			t.Fatalf("parseToken(%q) = %q", tok, id)
		}
	})
}
