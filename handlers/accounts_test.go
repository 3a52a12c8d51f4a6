package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"consult/accounts"
	"consult/store"
)

type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const staffPassword = "staff password 2026"

// staffEnv is the web env with bureau staff who can sign in, on a clock the
// test moves.
type staffEnv struct {
	*env
	as    *store.Accounts
	clock *movingClock
}

func newStaffEnv(t *testing.T, opts ...func(*Config)) *staffEnv {
	t.Helper()
	clock := &movingClock{t: time.Now()}
	var as *store.Accounts
	opts = append(opts, func(c *Config) { as = c.Accounts.(*store.Accounts) })
	e := newEnv(t, clock.Now, opts...)
	openDraft(e, "plan")
	ctx := context.Background()
	b, err := as.EnsureBureau(ctx, "console:test", planBureau)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []accounts.User{
		{Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{b.ID}},
		{Name: "wang", Role: accounts.RoleReviewer},
	} {
		if _, err := as.CreateUser(ctx, "console:test", u, staffPassword); err != nil {
			t.Fatal(err)
		}
	}
	return &staffEnv{env: e, as: as, clock: clock}
}

var (
	nextRe     = regexp.MustCompile(`name="next" value="([^"]*)"`)
	newTokenRe = regexp.MustCompile(`id="new-token-value">([^<]*)<`)
)

// signIn signs c in and returns the session cookie.
func (s *staffEnv) signIn(t *testing.T, c *client, name, password string) response {
	t.Helper()
	r := c.get("/login")
	return c.do(http.MethodPost, "/login", url.Values{"_csrf": {field(t, csrfRe, r.body)}, "name": {name}, "password": {password}, "next": {"/account"}})
}

// TestSignIn: the sign-in form, its refusals (wrong password, locked account,
// no CSRF token, a disabled user), the session cookie, sign-out and a cookie
// replayed after it.
func TestSignIn(t *testing.T) {
	s := newStaffEnv(t)
	c := s.client()

	// A staff page without a session: 401 with the sign-in form, coming back here.
	r := c.get("/account?lang=en")
	r.must(t, http.StatusUnauthorized, messages[langEN]["login.required"], `action="/login"`)
	if got := field(t, nextRe, r.body); got != "/account?lang=en" {
		t.Errorf("next %q", got)
	}
	checkPage(t, r, langEN)

	// The wrong password: 401, the name kept, no session.
	r = s.signIn(t, c, "zhang", "not the password")
	r.must(t, http.StatusUnauthorized, messages[langEN]["login.bad"], `value="zhang"`)
	if c.cookies[sessionCookie] != nil {
		t.Fatal("a session after a wrong password")
	}
	// No CSRF token: 403, whatever the password.
	if r := c.do(http.MethodPost, "/login", url.Values{"name": {"zhang"}, "password": {staffPassword}}); r.Code != http.StatusForbidden {
		t.Fatalf("sign-in without a CSRF token: %d", r.Code)
	}

	// Signing in: a new session id (a planted one is ended, not kept), the cookie's flags.
	c.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: strings.Repeat("A", 43)}
	r = s.signIn(t, c, "Zhang", staffPassword)
	if r.Code != http.StatusSeeOther || r.Header().Get("Location") != "/account" {
		t.Fatalf("sign-in: %d %s", r.Code, r.Header().Get("Location"))
	}
	ck := c.cookies[sessionCookie]
	if ck == nil || ck.Value == strings.Repeat("A", 43) || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("session cookie %+v", ck)
	}
	first := ck.Value
	r = c.get("/account")
	r.must(t, http.StatusOK, `id="account-name">zhang<`, planBureau, messages[langEN]["role.bureau"], `action="/logout"`)
	checkPage(t, r, langEN)
	// The citizens' pages are the same signed in or not: no staff navigation.
	if r := c.get("/d/plan"); strings.Contains(r.body, "/logout") || strings.Contains(r.body, "/account") {
		t.Error("a citizen page shows the staff navigation")
	}

	// Sign-out, then the old cookie replayed: 401.
	r = c.get("/account")
	r = c.do(http.MethodPost, "/logout", url.Values{"_csrf": {field(t, csrfRe, r.body)}})
	if r.Code != http.StatusSeeOther || c.cookies[sessionCookie] != nil {
		t.Fatalf("sign-out: %d, cookie %v", r.Code, c.cookies[sessionCookie])
	}
	replay := s.client()
	replay.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: first}
	replay.get("/account").must(t, http.StatusUnauthorized, `action="/login"`)

	// Idle: 30 minutes unused end a session (the store's default).
	s.signIn(t, c, "zhang", staffPassword)
	c.get("/account").must(t, http.StatusOK)
	s.clock.Add(31 * time.Minute)
	c.get("/account").must(t, http.StatusUnauthorized)

	// Locked: five wrong passwords lock the account, the right one is then
	// refused too, until the lockout has passed.
	for range 5 {
		s.signIn(t, c, "wang", "a guess").must(t, http.StatusUnauthorized)
	}
	r = s.signIn(t, c, "wang", staffPassword)
	r.must(t, http.StatusTooManyRequests, strings.SplitN(messages[langEN]["login.locked"], "%s", 2)[0])
	if r.Header().Get("Retry-After") == "" || c.cookies[sessionCookie] != nil {
		t.Fatalf("locked: Retry-After %q, cookie %v", r.Header().Get("Retry-After"), c.cookies[sessionCookie])
	}
	s.clock.Add(16 * time.Minute)
	if r := s.signIn(t, c, "wang", staffPassword); r.Code != http.StatusSeeOther {
		t.Fatalf("after the lockout: %d", r.Code)
	}

	// A disabled user's live session ends at once.
	d := s.client()
	s.signIn(t, d, "zhang", staffPassword)
	d.get("/account").must(t, http.StatusOK)
	if err := s.as.Disable(context.Background(), "console:test", "zhang"); err != nil {
		t.Fatal(err)
	}
	d.get("/account").must(t, http.StatusUnauthorized)
	s.signIn(t, d, "zhang", staffPassword).must(t, http.StatusForbidden, messages[langZH]["login.disabled"])
}

// TestSecureCookie: behind HTTPS the session cookie is Secure.
func TestSecureCookie(t *testing.T) {
	s := newStaffEnv(t, func(c *Config) { c.Secure = true })
	c := s.client()
	s.signIn(t, c, "wang", staffPassword)
	if ck := c.cookies[sessionCookie]; ck == nil || !ck.Secure {
		t.Fatalf("cookie %+v", ck)
	}
}

// TestMyAccount: a password change needs the current password and a CSRF
// token, and ends every other session; a token is shown once, works on the
// API within its scope, and stops when revoked.
func TestMyAccount(t *testing.T) {
	s := newStaffEnv(t)
	a, b := s.client(), s.client()
	s.signIn(t, a, "zhang", staffPassword)
	s.signIn(t, b, "zhang", staffPassword)
	page := a.get("/account?lang=zh")
	csrf := field(t, csrfRe, page.body)
	checkPage(t, page, langZH)

	const newPassword = "a brand new password"
	// No CSRF token: refused, nothing changed.
	if r := a.do(http.MethodPost, "/account/password", url.Values{"current": {staffPassword}, "password": {newPassword}, "confirm": {newPassword}}); r.Code != http.StatusForbidden {
		t.Fatalf("password change without CSRF: %d", r.Code)
	}
	b.get("/account").must(t, http.StatusOK)
	// A wrong current password, a short one, two that differ: the form comes back.
	for _, tc := range []struct {
		form url.Values
		msg  string
	}{
		{url.Values{"current": {"wrong wrong wrong"}, "password": {newPassword}, "confirm": {newPassword}}, messages[langZH]["err.password.current"]},
		{url.Values{"current": {staffPassword}, "password": {"short"}, "confirm": {"short"}}, "密码至少 12 个字符，当前 5 个。"},
		{url.Values{"current": {staffPassword}, "password": {newPassword}, "confirm": {newPassword + "!"}}, messages[langZH]["err.password.confirm"]},
	} {
		tc.form.Set("_csrf", csrf)
		r := a.do(http.MethodPost, "/account/password", tc.form)
		r.must(t, http.StatusUnprocessableEntity, tc.msg, `aria-invalid="true"`)
		if strings.Contains(r.body, staffPassword) || strings.Contains(r.body, newPassword) {
			t.Error("a password typed is on the page")
		}
		checkPage(t, r, langZH)
	}
	old := a.cookies[sessionCookie].Value
	r := a.do(http.MethodPost, "/account/password", url.Values{"_csrf": {csrf}, "current": {staffPassword}, "password": {newPassword}, "confirm": {newPassword}})
	if r.Code != http.StatusSeeOther || a.cookies[sessionCookie].Value == old {
		t.Fatalf("password change: %d, session id kept: %v", r.Code, a.cookies[sessionCookie].Value == old)
	}
	if loc := r.Header().Get("Location"); loc != "/account?done=password" {
		t.Fatalf("after the change: %s", loc)
	}
	a.get("/account?done=password").must(t, http.StatusOK, messages[langZH]["account.password_done"])
	// Every answer of a staff form switches language to a page that has a GET.
	for _, path := range []string{"/account/password", "/account/tokens"} {
		r := a.do(http.MethodPost, path, url.Values{"_csrf": {csrf}})
		if !strings.Contains(r.body, `href="/account?lang=en"`) {
			t.Errorf("%s: the language switch is not /account", path)
		}
	}
	b.get("/account").must(t, http.StatusUnauthorized)
	replay := s.client()
	replay.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: old}
	replay.get("/account").must(t, http.StatusUnauthorized)

	// A read token, shown once.
	r = a.do(http.MethodPost, "/account/tokens", url.Values{"_csrf": {csrf}, "label": {"意见导出"}, "scope": {"read"}})
	r.must(t, http.StatusCreated, "新令牌：意见导出", messages[langZH]["account.token_once"])
	tok := field(t, newTokenRe, r.body)
	if again := a.get("/account"); strings.Contains(again.body, tok) || !strings.Contains(again.body, "意见导出") {
		t.Fatal("the token is shown again, or its label is not listed")
	}
	api := func(method, path, token, body string) int {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		return rec.Code
	}
	if st := api("GET", "/api/v1/drafts/plan/comments", tok, ""); st != http.StatusOK {
		t.Fatalf("read token reads: %d", st)
	}
	if st := api("PUT", "/api/v1/drafts/plan/limits", tok, "{}"); st != http.StatusForbidden {
		t.Fatalf("read token writes: %d", st)
	}
	// The session cookie is nothing on the API.
	req := httptest.NewRequest("GET", "/api/v1/drafts/plan/comments", nil)
	req.AddCookie(a.cookies[sessionCookie])
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("session cookie on the API: %d", rec.Code)
	}
	// An empty label comes back with what was typed.
	a.do(http.MethodPost, "/account/tokens", url.Values{"_csrf": {csrf}, "label": {" "}, "scope": {"write"}}).
		must(t, http.StatusUnprocessableEntity, messages[langZH]["err.token.label"], `value="write" selected`)

	// Revoke: another user's token is not found; one's own stops working.
	ts, _ := s.as.Tokens(context.Background(), "zhang")
	if len(ts) != 1 {
		t.Fatalf("tokens %+v", ts)
	}
	w := s.client()
	s.signIn(t, w, "wang", staffPassword)
	w.do(http.MethodPost, "/account/tokens/"+ts[0].ID+"/revoke", url.Values{"_csrf": {field(t, csrfRe, w.get("/account").body)}}).
		must(t, http.StatusNotFound)
	if r := a.do(http.MethodPost, "/account/tokens/"+ts[0].ID+"/revoke", url.Values{"_csrf": {csrf}}); r.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.Code)
	}
	a.get("/account?done=revoked").must(t, http.StatusOK, messages[langZH]["account.token_revoked"], messages[langZH]["account.token_none"])
	if st := api("GET", "/api/v1/drafts/plan/comments", tok, ""); st != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", st)
	}
}

// FuzzLocalPath: where a sign-in goes next is always a path on this site:
// never another host, whatever the form's next field held.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/account", "//evil.example", "/\\evil.example", "https://evil.example/", "/a?b=c", "", "/\r\nLocation: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		p := localPath(next, "/account")
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
			t.Fatalf("localPath(%q) = %q", next, p)
		}
	})
}
