package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/record"
)

// Staff sign in to the pages with a session (a cookie) and call the API with a
// Bearer token: the API reads no cookie, so no other site can make a browser
// call it, and the pages read no Authorization header. Citizens sign in to
// nothing.

// staffAuth is what the middleware needs to know who is calling (store.Accounts).
type staffAuth interface {
	TokenPrincipal(ctx context.Context, token string) (accounts.Principal, error)
	Session(ctx context.Context, id string) (accounts.Principal, accounts.Session, error)
	BureauByName(ctx context.Context, name string) (accounts.Bureau, error)
	EnsureBureau(ctx context.Context, actor accounts.Actor, name string) (accounts.Bureau, error)
}

// staffPages is what the sign-in and account pages need (store.Accounts).
type staffPages interface {
	Login(ctx context.Context, name, password, client string) (accounts.Session, error)
	Logout(ctx context.Context, id string) error
	User(ctx context.Context, name string) (accounts.User, error)
	Bureau(ctx context.Context, id string) (accounts.Bureau, error)
	ChangePassword(ctx context.Context, name, current, password string) (accounts.Session, error)
	CreateToken(ctx context.Context, actor accounts.Actor, user string, scope accounts.Scope, label string) (accounts.Token, string, error)
	RevokeToken(ctx context.Context, actor accounts.Actor, id, owner string) error
	Tokens(ctx context.Context, user string) ([]accounts.Token, error)
}

// staffAdmin is what the admin API needs (store.Accounts).
type staffAdmin interface {
	Users(ctx context.Context) ([]accounts.User, error)
	CreateUser(ctx context.Context, actor accounts.Actor, u accounts.User, password string) (accounts.User, error)
	Disable(ctx context.Context, actor accounts.Actor, name string) error
	Bureaus(ctx context.Context) ([]accounts.Bureau, error)
}

// accountStore is store.Accounts as the routes see it.
type accountStore interface {
	staffAuth
	staffPages
	staffAdmin
}

// sessionCookie holds a session's id. HttpOnly, Secure behind HTTPS, and
// SameSite=Lax rather than Strict: a link to a staff page from a digest e-mail
// then opens signed in, and Lax still keeps the cookie off every cross-site
// POST; every page POST also carries a CSRF token.
const sessionCookie = "consult_session"

// principalKey holds the accounts.Principal of a request in echo's context.
const principalKey = "consult.principal"

func principalOf(c echo.Context) (accounts.Principal, bool) {
	p, ok := c.Get(principalKey).(accounts.Principal)
	return p, ok
}

// bearer authenticates the API: the admin token (compared in constant time) or
// a user's token. Anything else is 401.
func (s *server) bearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		if !ok || tok == "" {
			return errUnauthorized
		}
		var p accounts.Principal
		switch {
		case s.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.AdminToken)) == 1:
			p = accounts.AdminTokenPrincipal()
		default:
			var err error
			if p, err = s.Accounts.TokenPrincipal(c.Request().Context(), tok); err != nil {
				return err
			}
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// signedIn authenticates a staff page by its session cookie; without a live
// session the answer is 401 with the sign-in form.
func (s *server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil {
			return accounts.ErrUnauthenticated
		}
		p, sess, err := s.Accounts.Session(c.Request().Context(), ck.Value)
		if err != nil {
			if errors.Is(err, accounts.ErrUnauthenticated) {
				s.clearSession(c)
			}
			return err
		}
		c.Set(principalKey, p)
		c.Set("consult.session", sess)
		return next(c)
	}
}

// may lets a request through when its principal may take action a: on the
// draft named by the route's :id (the draft's bureau decides), or, on a route
// without one, on some draft (the handler then checks the one it is given).
func (s *server) may(a accounts.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := principalOf(c)
			if !ok {
				return errUnauthorized
			}
			if id := c.Param("id"); id != "" {
				d, err := s.Drafts.Get(c.Request().Context(), id)
				if err != nil {
					return err
				}
				b, err := s.bureauID(c.Request().Context(), d.Bureau)
				if err != nil {
					return err
				}
				if !p.May(a, b) {
					return accounts.ErrForbidden
				}
				return next(c)
			}
			if !p.MayAny(a) {
				return accounts.ErrForbidden
			}
			return next(c)
		}
	}
}

// bureauID is the id of the bureau record a draft's bureau names, or "" when
// it has none yet (then only admins may act on the draft).
func (s *server) bureauID(ctx context.Context, name string) (string, error) {
	b, err := s.Accounts.BureauByName(ctx, name)
	if errors.Is(err, accounts.ErrNotFound) {
		return "", nil
	}
	return b.ID, err
}

func (s *server) setSession(c echo.Context, sess accounts.Session) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: sess.ID, Path: "/", HttpOnly: true,
		Secure: s.Secure, SameSite: http.SameSiteLaxMode})
}

func (s *server) clearSession(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.Secure, SameSite: http.SameSiteLaxMode})
}

// loginData is the sign-in form, blank or as it came back.
type loginData struct {
	Name, Next, CSRF string
	// Notice says why the form is shown: a wrong password, a lockout, a page
	// that needs a session.
	Notice string
	// Warn: the notice is a problem, not news.
	Warn bool
}

// localPath is a path to return to after signing in: only a path on this
// site, never another host ("//evil.example", "/\evil.example"); else
// fallback (a path of the route table).
func localPath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return fallback
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return fallback
	}
	return p
}

// nextPath is where a sign-in goes next: p when it is on this site, else the
// account page.
func (s *server) nextPath(p string) string { return localPath(p, s.paths.url(routeAccount)) }

func (s *server) loginPage(c echo.Context) error {
	v := s.view(c, s.Now(), "account")
	data := loginData{Next: s.nextPath(c.QueryParam("next")), CSRF: csrfToken(c)}
	if c.QueryParam("done") == "logout" {
		data.Notice = v.T("login.logged_out")
	}
	v.Title, v.Page = v.T("login.title"), data
	return s.render(c, http.StatusOK, "login", v)
}

// loginAgain is the sign-in form with a reason, for handleError (401 on a
// staff page) and for a failed sign-in.
func (s *server) loginAgain(c echo.Context, status int, name, notice string) error {
	v := s.view(c, s.Now(), "account")
	next := c.Request().URL.RequestURI()
	if c.Request().Method != http.MethodGet {
		next = s.paths.url(routeAccount)
	}
	login := s.paths.url(routeLogin)
	if c.Path() == login {
		next = s.nextPath(c.FormValue("next"))
	}
	v.SwitchURL = login + "?" + url.Values{"next": {s.nextPath(next)}, "lang": {v.Lang.other().short()}}.Encode()
	v.Title, v.Page = v.T("login.title"), loginData{Name: name, Next: s.nextPath(next), CSRF: csrfToken(c), Notice: notice, Warn: true}
	return s.render(c, status, "login", v)
}

func (s *server) login(c echo.Context) error {
	name, password := c.FormValue("name"), c.FormValue("password")
	ctx := c.Request().Context()
	sess, err := s.Accounts.Login(ctx, name, password, s.clientID(c))
	if err != nil {
		v := s.view(c, s.Now(), "account")
		var le *accounts.LockedError
		switch {
		case errors.Is(err, accounts.ErrBadCredentials):
			return s.loginAgain(c, http.StatusUnauthorized, name, v.T("login.bad"))
		case errors.Is(err, accounts.ErrDisabled):
			return s.loginAgain(c, http.StatusForbidden, name, v.T("login.disabled"))
		case errors.As(err, &le):
			wait := le.Until.Sub(s.Now())
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			key := "login.locked"
			if le.Address {
				key = "login.locked_address"
			}
			return s.loginAgain(c, http.StatusTooManyRequests, name, v.T(key, v.span(wait+time.Minute)))
		}
		return err
	}
	// A new id at every sign-in: a session id planted before it (fixation) is
	// ended, never promoted.
	if ck, err := c.Cookie(sessionCookie); err == nil {
		_ = s.Accounts.Logout(ctx, ck.Value)
	}
	s.setSession(c, sess)
	return c.Redirect(http.StatusSeeOther, s.nextPath(c.FormValue("next")))
}

func (s *server) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := s.Accounts.Logout(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	s.clearSession(c)
	return c.Redirect(http.StatusSeeOther, s.paths.url(routeLogin)+"?done=logout")
}

// accountData is the "my account" page.
type accountData struct {
	User    accounts.User
	Bureaus []accounts.Bureau
	Tokens  []accounts.Token
	CSRF    string
	// NewToken is a token just made, shown this once.
	NewToken       string
	NewTokenLabel  string
	Notice         string
	Errors         map[string]string // field -> message, for both forms
	Label          string            // the token form as typed
	Scope          accounts.Scope
	Scopes         []accounts.Scope
	MinPassword    int
	PasswordFailed bool // the password form came back: its fields have the focus
}

// Err is the message for one field, or "".
func (a accountData) Err(field string) string { return a.Errors[field] }

func (s *server) accountData(c echo.Context, t tr) (accountData, error) {
	p, _ := principalOf(c)
	ctx := c.Request().Context()
	u, err := s.Accounts.User(ctx, p.User)
	if err != nil {
		return accountData{}, err
	}
	d := accountData{User: u, CSRF: csrfToken(c), Scopes: accounts.Scopes, Scope: accounts.ScopeRead, MinPassword: accounts.MinPassword}
	for _, id := range u.Bureaus {
		b, err := s.Accounts.Bureau(ctx, id)
		if err != nil {
			return accountData{}, err
		}
		d.Bureaus = append(d.Bureaus, b)
	}
	ts, err := s.Accounts.Tokens(ctx, u.Name)
	if err != nil {
		return accountData{}, err
	}
	for _, tk := range ts {
		if !tk.Revoked() {
			d.Tokens = append(d.Tokens, tk)
		}
	}
	switch c.QueryParam("done") {
	case "password":
		d.Notice = t.T("account.password_done")
	case "revoked":
		d.Notice = t.T("account.token_revoked")
	}
	return d, nil
}

func (s *server) accountPage(c echo.Context) error {
	v := s.staffView(c)
	d, err := s.accountData(c, v.tr)
	if err != nil {
		return err
	}
	v.Title, v.Page = v.T("account.title"), d
	return s.render(c, http.StatusOK, "account", v)
}

// accountAgain is the account page after a form that was not taken: what was
// typed (never a password) and a message beside each field.
func (s *server) accountAgain(c echo.Context, err error, password bool) error {
	var ve *accounts.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	v := s.staffView(c)
	d, derr := s.accountData(c, v.tr)
	if derr != nil {
		return derr
	}
	d.Errors = fieldMessages(v.tr, ve.Fields)
	d.PasswordFailed = password
	d.Label, d.Scope = c.FormValue("label"), accounts.Scope(c.FormValue("scope"))
	v.Title, v.Page = v.T("account.title"), d
	return s.render(c, http.StatusUnprocessableEntity, "account", v)
}

func (s *server) changePassword(c echo.Context) error {
	p, _ := principalOf(c)
	current, password := c.FormValue("current"), c.FormValue("password")
	if password != c.FormValue("confirm") {
		return s.accountAgain(c, &accounts.ValidationError{Fields: map[string]accounts.Problem{"confirm": {Key: "err.password.confirm"}}}, true)
	}
	sess, err := s.Accounts.ChangePassword(c.Request().Context(), p.User, current, password)
	if err != nil {
		var le *accounts.LockedError
		if errors.As(err, &le) {
			// Too many wrong current passwords: the session is not worth keeping.
			s.clearSession(c)
		}
		return s.accountAgain(c, err, true)
	}
	s.setSession(c, sess)
	return c.Redirect(http.StatusSeeOther, s.paths.url(routeAccount)+"?done=password")
}

// createToken makes a token and shows it on the answer to the POST itself, not
// after a redirect: it is shown once and kept nowhere, not even for a page
// that would show it next. The page is no-store, like every page.
func (s *server) createToken(c echo.Context) error {
	p, _ := principalOf(c)
	label, scope := c.FormValue("label"), accounts.Scope(c.FormValue("scope"))
	_, secret, err := s.Accounts.CreateToken(c.Request().Context(), p.Actor, p.User, scope, label)
	if err != nil {
		return s.accountAgain(c, err, false)
	}
	v := s.staffView(c)
	d, err := s.accountData(c, v.tr)
	if err != nil {
		return err
	}
	d.NewToken, d.NewTokenLabel = secret, strings.TrimSpace(label)
	v.Title, v.Page = v.T("account.title"), d
	return s.render(c, http.StatusCreated, "account", v)
}

func (s *server) revokeToken(c echo.Context) error {
	p, _ := principalOf(c)
	if err := s.Accounts.RevokeToken(c.Request().Context(), p.Actor, c.Param("token"), p.User); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.paths.url(routeAccount)+"?done=revoked")
}

// staffNav is the layout's part for a signed-in member of staff.
type staffNav struct {
	User string
	CSRF string
}

// staffView is the view of a staff page: the layout shows who is signed in and
// a sign-out button.
func (s *server) staffView(c echo.Context) view {
	v := s.view(c, s.Now(), "account")
	if p, ok := principalOf(c); ok {
		v.Staff = &staffNav{User: p.User, CSRF: csrfToken(c)}
	}
	// The answer to a POST is the account page, whose other language is
	// the account page: the POST's own path has no GET.
	v.SwitchURL = s.paths.url(routeAccount) + "?lang=" + v.Lang.other().short()
	return v
}

// The admin API: users and bureaus.

type userJSON struct {
	Name     string        `json:"name"`
	Role     accounts.Role `json:"role"`
	Bureaus  []string      `json:"bureaus"`
	Disabled bool          `json:"disabled"`
	Created  time.Time     `json:"created_at"`
}

func (s *server) apiListUsers(c echo.Context) error {
	us, err := s.Accounts.Users(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]userJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userJSON{Name: u.Name, Role: u.Role, Bureaus: nonNil(u.Bureaus), Disabled: u.Disabled, Created: u.CreatedAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out})
}

// apiCreateUser makes a user; bureaus are named as drafts name them, and made
// on first use.
func (s *server) apiCreateUser(c echo.Context) error {
	var in struct {
		Name     string        `json:"name"`
		Role     accounts.Role `json:"role"`
		Bureaus  []string      `json:"bureaus"`
		Password string        `json:"password"`
	}
	if err := readJSON(c, &in); err != nil {
		return err
	}
	p, _ := principalOf(c)
	ctx := c.Request().Context()
	u := accounts.User{Name: in.Name, Role: in.Role}
	for _, name := range in.Bureaus {
		b, err := s.Accounts.EnsureBureau(ctx, p.Actor, name)
		if err != nil {
			return err
		}
		u.Bureaus = append(u.Bureaus, b.ID)
	}
	u, err := s.Accounts.CreateUser(ctx, p.Actor, u, in.Password)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, s.paths.url(routeAPIUsers)+"/"+url.PathEscape(u.Name))
	return c.JSON(http.StatusCreated, userJSON{Name: u.Name, Role: u.Role, Bureaus: nonNil(u.Bureaus), Created: u.CreatedAt})
}

func (s *server) apiDisableUser(c echo.Context) error {
	p, _ := principalOf(c)
	if err := s.Accounts.Disable(c.Request().Context(), p.Actor, c.Param("name")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"name": c.Param("name"), "disabled": true})
}

func (s *server) apiListBureaus(c echo.Context) error {
	bs, err := s.Accounts.Bureaus(c.Request().Context())
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []accounts.Bureau{}
	}
	return c.JSON(http.StatusOK, map[string]any{"bureaus": bs})
}

// apiListStaffEvents pages through the staff record: every change to users,
// bureaus and tokens, and every account's lockout (see pageOfRecord).
func (s *server) apiListStaffEvents(c echo.Context) error {
	return s.pageOfRecord(c, record.Staff, map[string]any{"scope": string(record.Staff)})
}

// noAccounts is the account store of a server configured without one: nobody
// signs in, no token but the admin token works, and no user exists.
type noAccounts struct{}

func (noAccounts) TokenPrincipal(context.Context, string) (accounts.Principal, error) {
	return accounts.Principal{}, accounts.ErrUnauthenticated
}
func (noAccounts) Session(context.Context, string) (accounts.Principal, accounts.Session, error) {
	return accounts.Principal{}, accounts.Session{}, accounts.ErrUnauthenticated
}
func (noAccounts) BureauByName(context.Context, string) (accounts.Bureau, error) {
	return accounts.Bureau{}, accounts.ErrNotFound
}
func (noAccounts) EnsureBureau(context.Context, accounts.Actor, string) (accounts.Bureau, error) {
	return accounts.Bureau{}, nil // drafts are made by the admin token alone, for no bureau record
}
func (noAccounts) Login(context.Context, string, string, string) (accounts.Session, error) {
	return accounts.Session{}, accounts.ErrBadCredentials
}
func (noAccounts) Logout(context.Context, string) error { return nil }
func (noAccounts) User(context.Context, string) (accounts.User, error) {
	return accounts.User{}, accounts.ErrNotFound
}
func (noAccounts) Bureau(context.Context, string) (accounts.Bureau, error) {
	return accounts.Bureau{}, accounts.ErrNotFound
}
func (noAccounts) ChangePassword(context.Context, string, string, string) (accounts.Session, error) {
	return accounts.Session{}, accounts.ErrNotFound
}
func (noAccounts) CreateToken(context.Context, accounts.Actor, string, accounts.Scope, string) (accounts.Token, string, error) {
	return accounts.Token{}, "", accounts.ErrNotFound
}
func (noAccounts) RevokeToken(context.Context, accounts.Actor, string, string) error {
	return accounts.ErrNotFound
}
func (noAccounts) Tokens(context.Context, string) ([]accounts.Token, error) { return nil, nil }
func (noAccounts) Users(context.Context) ([]accounts.User, error)           { return nil, nil }
func (noAccounts) Bureaus(context.Context) ([]accounts.Bureau, error)       { return nil, nil }
func (noAccounts) Disable(context.Context, accounts.Actor, string) error    { return accounts.ErrNotFound }
func (noAccounts) CreateUser(context.Context, accounts.Actor, accounts.User, string) (accounts.User, error) {
	return accounts.User{}, accounts.ErrForbidden
}
