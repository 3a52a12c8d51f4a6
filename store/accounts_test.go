package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	"consult/internal/redistest"
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

// eventLog collects what Accounts hands to OnEvent.
type eventLog struct {
	mu sync.Mutex
	es []accounts.Event
}

func (l *eventLog) add(_ context.Context, e accounts.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.es = append(l.es, e)
	return nil
}

func (l *eventLog) kinds() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []string
	for _, e := range l.es {
		k = append(k, e.Kind+" "+e.Subject+" by "+string(e.Actor))
	}
	return strings.Join(k, "\n")
}

func newTestAccounts(t *testing.T, rdb redis.UniversalClient) (*Accounts, *testClock, *eventLog) {
	t.Helper()
	h, err := accounts.NewHasher(accounts.HashParams{Memory: 64, Iterations: 1, Parallelism: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	log := &eventLog{}
	a, err := NewAccounts(rdb, AccountsConfig{Hasher: h, Now: clock.Now, OnEvent: log.add,
		Sessions: accounts.SessionPolicy{Idle: 30 * time.Minute, Absolute: 2 * time.Hour},
		Logins:   LoginLimits{PerAccount: 3, PerAddress: 5, Window: 10 * time.Minute, Lockout: 15 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return a, clock, log
}

const pw = "a long enough password"

func TestAccounts(t *testing.T)        { testAccounts(t, redistest.Start(t).Client(t)) }
func TestAccountsCluster(t *testing.T) { testAccounts(t, redistest.StartCluster(t).Client(t)) }

// testAccounts: users, bureaus and tokens from creation to revocation, with
// the events each change hands to the record.
func testAccounts(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	a, clock, log := newTestAccounts(t, rdb)
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
	if _, err := a.CreateUser(ctx, console, accounts.User{Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{b1.ID, b2.ID}}, pw); err != nil {
		t.Fatal(err)
	}
	u, err := a.User(ctx, "zhang")
	if err != nil || u.Role != accounts.RoleBureau || strings.Join(u.Bureaus, ",") != "b1,b2" || u.Disabled || !u.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("user %+v %v", u, err)
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
	if got := log.kinds(); got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
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
	a, clock, _ := newTestAccounts(t, rdb)
	if _, err := a.CreateUser(ctx, "test", accounts.User{Name: "li", Role: accounts.RoleReviewer}, pw); err != nil {
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
	a, clock, log := newTestAccounts(t, rdb)
	for _, n := range []string{"wang", "zhao"} {
		if _, err := a.CreateUser(ctx, "test", accounts.User{Name: n, Role: accounts.RoleReviewer}, pw); err != nil {
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
	if !strings.Contains(log.kinds(), "user.locked_out wang") {
		t.Errorf("no lockout event: %s", log.kinds())
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
