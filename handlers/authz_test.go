package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/record"
	"consult/store"
)

// The roles of the authorization matrix: every route is called as each.
const (
	roleAnonymous   = "anonymous"
	roleOtherBureau = "bureau of another bureau"
	roleBureau      = "bureau"
	roleReviewer    = "reviewer"
	roleAdmin       = "admin"
	roleAdminToken  = "admin token"
	roleRevoked     = "revoked token"
	roleExpired     = "expired session"
	roleDisabled    = "disabled user"
)

var matrixRoles = []string{roleAnonymous, roleOtherBureau, roleBureau, roleReviewer, roleAdmin, roleAdminToken, roleRevoked, roleExpired, roleDisabled}

// Who may call a route. The test says it for every route itself: a route
// added to the table without an entry here fails TestAuthorizationMatrix.
const (
	anyone   = "anyone"   // citizens, operators, the sign-in page
	managers = "managers" // API: admins and users of the draft's bureau
	readers  = "readers"  // API: admins, reviewers and users of the draft's bureau
	admins   = "admins"   // API: admins only
	staff    = "staff"    // pages: anyone signed in
)

// allowedRoles are the roles each kind of route lets in; every other role is
// refused with 401 when unknown (no credential, or one that no longer works)
// and 403 when known but not entitled.
var allowedRoles = map[string][]string{
	managers: {roleBureau, roleAdmin, roleAdminToken},
	readers:  {roleBureau, roleReviewer, roleAdmin, roleAdminToken},
	admins:   {roleAdmin, roleAdminToken},
	staff:    {roleOtherBureau, roleBureau, roleReviewer, roleAdmin},
}

// routeAccess is the matrix's entry for a route: who may call it, and the
// status they get (0: any status that is not 401, 403 or 5xx).
type routeAccess struct {
	who string
	ok  int
}

var routeAccessTable = map[string]routeAccess{
	"GET /healthz":                       {anyone, 200},
	"GET /readyz":                        {anyone, 200},
	"GET /metrics":                       {anyone, 200},
	"GET /api/v1/drafts":                 {anyone, 200},
	"GET /api/v1/drafts/:id":             {anyone, 200},
	"POST /api/v1/drafts/:id/comments":   {anyone, 0},
	"GET /api/v1/receipts/:code":         {anyone, 200},
	"echo_route_not_found /api/v1":       {anyone, 404},
	"echo_route_not_found /api/v1/*":     {anyone, 404},
	"POST /api/v1/drafts":                {managers, 201},
	"GET /api/v1/drafts/:id/comments":    {readers, 200},
	"GET /api/v1/drafts/:id/events":      {readers, 200},
	"POST /api/v1/drafts/:id/digests":    {managers, 202},
	"PUT /api/v1/drafts/:id/limits":      {managers, 200},
	"GET /api/v1/users":                  {admins, 200},
	"POST /api/v1/users":                 {admins, 422},
	"POST /api/v1/users/:name/disable":   {admins, 200},
	"GET /api/v1/bureaus":                {admins, 200},
	"GET /api/v1/staff/events":           {admins, 200},
	"GET /":                              {anyone, 200},
	"GET /d/:id":                         {anyone, 200},
	"GET /d/:id/comment":                 {anyone, 200},
	"POST /d/:id/comment":                {anyone, 0},
	"GET /receipts":                      {anyone, 200},
	"GET /receipts/:code":                {anyone, 200},
	"GET /static/*":                      {anyone, 200},
	"GET /digests/:draft/:job/:file":     {anyone, 404},
	"echo_route_not_found /":             {anyone, 0},
	"echo_route_not_found /*":            {anyone, 404},
	"GET /login":                         {anyone, 200},
	"POST /login":                        {anyone, 401}, // no credentials in the form
	"POST /logout":                       {anyone, 303},
	"GET /account":                       {staff, 200},
	"POST /account/password":             {staff, 422}, // a wrong current password
	"POST /account/tokens":               {staff, 422}, // no label
	"POST /account/tokens/:token/revoke": {staff, 404}, // no such token

	// HEAD on every page, as its GET.
	"HEAD /":               {anyone, 200},
	"HEAD /d/:id":          {anyone, 200},
	"HEAD /d/:id/comment":  {anyone, 200},
	"HEAD /receipts":       {anyone, 200},
	"HEAD /receipts/:code": {anyone, 200},
	"HEAD /static/*":       {anyone, 200},
	"HEAD /login":          {anyone, 200},
	"HEAD /account":        {staff, 200},

	// OPTIONS on every API path: what it allows, to anyone.
	"OPTIONS /api/v1/drafts":              {anyone, 204},
	"OPTIONS /api/v1/drafts/:id":          {anyone, 204},
	"OPTIONS /api/v1/drafts/:id/comments": {anyone, 204},
	"OPTIONS /api/v1/drafts/:id/events":   {anyone, 204},
	"OPTIONS /api/v1/drafts/:id/digests":  {anyone, 204},
	"OPTIONS /api/v1/drafts/:id/limits":   {anyone, 204},
	"OPTIONS /api/v1/receipts/:code":      {anyone, 204},
	"OPTIONS /api/v1/users":               {anyone, 204},
	"OPTIONS /api/v1/users/:name/disable": {anyone, 204},
	"OPTIONS /api/v1/bureaus":             {anyone, 204},
	"OPTIONS /api/v1/staff/events":        {anyone, 204},
}

// fakeDigests queues nothing.
type fakeDigests struct{}

func (fakeDigests) RequestInterim(context.Context, string) (string, error) { return "job-1", nil }

// matrixEnv is the server with a user, a token and a session for every role.
type matrixEnv struct {
	*routeEnv
	as      *store.Accounts
	tokens  map[string]string // role -> Bearer token
	session map[string]string // role -> a session id that never works (expired, disabled)
	names   map[string]string // role -> user name, for a fresh session per request
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	cfg, ds, cs := storeConfig(rdb, nil, &logSink{})
	cfg.AdminToken, cfg.Digests = apiToken, fakeDigests{}
	as := cfg.Accounts.(*store.Accounts)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	if _, err := ds.Import(ctx, record.System, drafts.Draft{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther,
		Text: planText, OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"a@example.gov.cn"}}); err != nil {
		t.Fatal(err)
	}
	r, err := cs.Submit(ctx, comments.Submission{DraftID: "plan", Body: "意见"})
	if err != nil {
		t.Fatal(err)
	}
	m := &matrixEnv{routeEnv: &routeEnv{e: e, code: r.Code, asset: assetName(t, e)}, as: as,
		tokens: map[string]string{roleAdminToken: apiToken}, session: map[string]string{}, names: map[string]string{}}
	console := accounts.ConsoleActor("test")
	b1, _ := as.EnsureBureau(ctx, console, planBureau)
	b2, _ := as.EnsureBureau(ctx, console, "某市交通运输局")
	for role, u := range map[string]accounts.User{
		roleOtherBureau: {Name: "li", Role: accounts.RoleBureau, Bureaus: []string{b2.ID}},
		roleBureau:      {Name: "zhang", Role: accounts.RoleBureau, Bureaus: []string{b1.ID}},
		roleReviewer:    {Name: "wang", Role: accounts.RoleReviewer},
		roleAdmin:       {Name: "root", Role: accounts.RoleAdmin},
		roleDisabled:    {Name: "zhao", Role: accounts.RoleBureau, Bureaus: []string{b1.ID}},
		"target":        {Name: "target", Role: accounts.RoleReviewer},
	} {
		if _, err := as.CreateUser(ctx, console, u, matrixPassword); err != nil {
			t.Fatal(err)
		}
		_, tok, err := as.CreateToken(ctx, console, u.Name, accounts.ScopeWrite, "matrix")
		if err != nil {
			t.Fatal(err)
		}
		m.tokens[role], m.names[role] = tok, u.Name
	}
	// The disabled user had a token and a live session before it was disabled.
	sess, err := as.Login(ctx, "zhao", matrixPassword, "c")
	if err != nil {
		t.Fatal(err)
	}
	m.session[roleDisabled] = sess.ID
	if err := as.Disable(ctx, console, "zhao"); err != nil {
		t.Fatal(err)
	}
	// A token revoked; a session begun by a clock an hour behind, idle since.
	revoked, tok, _ := as.CreateToken(ctx, console, "root", accounts.ScopeWrite, "revoked")
	if err := as.RevokeToken(ctx, console, revoked.ID, ""); err != nil {
		t.Fatal(err)
	}
	m.tokens[roleRevoked] = tok
	past, _ := store.NewAccounts(rdb, store.AccountsConfig{Hasher: testHasher, Now: func() time.Time { return now.Add(-time.Hour) }})
	old, err := past.Login(ctx, "root", matrixPassword, "c")
	if err != nil {
		t.Fatal(err)
	}
	m.session[roleExpired] = old.ID
	return m
}

const matrixPassword = "matrix password 1234"

func assetName(t *testing.T, e *echo.Echo) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	m := assetRe.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no asset on the list page")
	}
	return strings.TrimPrefix(m[0], "/static/")
}

// request is one route called as one role: the API with the role's Bearer
// token, the pages with a session cookie (a fresh one for a live user: some
// routes end sessions), and every form with a CSRF token, so that what
// decides is who calls.
func (m *matrixEnv) request(t *testing.T, method, path, role string) *http.Request {
	t.Helper()
	target := m.target(path)
	target = strings.ReplaceAll(target, ":name", "target")
	target = strings.ReplaceAll(target, ":token", "0123456789abcdef")
	api := strings.HasPrefix(path, "/api/")
	var body string
	switch {
	case method == http.MethodPost && path == "/api/v1/drafts":
		b, _ := json.Marshal(map[string]any{"id": "m-" + strings.ReplaceAll(role, " ", "-"), "title": planTitle, "bureau": planBureau,
			"kind": "other", "text": planText, "opens_at": time.Now().Format(time.RFC3339),
			"closes_at": time.Now().Add(time.Hour).Format(time.RFC3339), "digest_recipients": []string{"a@example.gov.cn"}})
		body = string(b)
	case api && (method == http.MethodPost || method == http.MethodPut):
		body = `{}`
	case method == http.MethodPost || method == echo.RouteNotFound:
		body = url.Values{"_csrf": {"matrix-csrf"}}.Encode()
	}
	if method == echo.RouteNotFound {
		method = http.MethodGet
	}
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if api {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "consult_csrf", Value: "matrix-csrf"})
	}
	switch role {
	case roleAnonymous:
	case roleAdminToken, roleRevoked:
		req.Header.Set("Authorization", "Bearer "+m.tokens[role])
	case roleExpired, roleDisabled:
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: m.session[role]})
		if role == roleDisabled {
			req.Header.Set("Authorization", "Bearer "+m.tokens[role])
		}
	default:
		if api {
			req.Header.Set("Authorization", "Bearer "+m.tokens[role])
		} else {
			sess, err := m.as.Login(req.Context(), m.names[role], matrixPassword, "matrix")
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.ID})
		}
	}
	return req
}

// TestAuthorizationMatrix calls every route of the table as every role and
// checks the status against routeAccessTable: 401 for a caller unknown, 403
// for one known but not entitled, the route's own answer for the rest. A
// route without an entry fails, and so does an entry without a route.
func TestAuthorizationMatrix(t *testing.T) {
	m := newMatrixEnv(t)
	seen := map[string]bool{}
	for _, rt := range m.e.Routes() {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		acc, ok := routeAccessTable[key]
		if !ok {
			t.Errorf("%s: no entry in routeAccessTable: say who may call it", key)
			continue
		}
		allowed := map[string]bool{}
		for _, r := range allowedRoles[acc.who] {
			allowed[r] = true
		}
		for _, role := range matrixRoles {
			req := m.request(t, rt.Method, rt.Path, role)
			rec := httptest.NewRecorder()
			m.e.ServeHTTP(rec, req)
			got := rec.Code
			want := acc.ok
			known := role == roleOtherBureau || role == roleBureau || role == roleReviewer || role == roleAdmin || role == roleAdminToken
			if strings.HasPrefix(rt.Path, "/api/") == false && role == roleAdminToken {
				known = false // the pages read no Bearer token
			}
			switch {
			case acc.who == anyone || allowed[role]:
			case known:
				want = http.StatusForbidden
			default:
				want = http.StatusUnauthorized
			}
			bad := got != want
			if want == 0 {
				bad = got == 401 || got == 403 || got >= 500
			}
			if bad {
				t.Errorf("%s as %s: %d, want %d\n%.300s", key, role, got, want, rec.Body.String())
			}
			if got == http.StatusUnauthorized || got == http.StatusForbidden {
				checkRefusal(t, key+" as "+role, rec, strings.HasPrefix(rt.Path, "/api/"))
			}
		}
	}
	for key := range routeAccessTable {
		if !seen[key] {
			t.Errorf("routeAccessTable names %s, which is not a route", key)
		}
	}
}

// checkRefusal: a refusal is problem+json on the API (with WWW-Authenticate on
// a 401), a page for people (the sign-in form on a 401).
func checkRefusal(t *testing.T, what string, rec *httptest.ResponseRecorder, api bool) {
	t.Helper()
	ct := rec.Header().Get("Content-Type")
	switch {
	case api && ct != "application/problem+json":
		t.Errorf("%s: Content-Type %q", what, ct)
	case api && rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "":
		t.Errorf("%s: 401 without WWW-Authenticate", what)
	case !api && !strings.HasPrefix(ct, "text/html"):
		t.Errorf("%s: Content-Type %q", what, ct)
	case !api && rec.Code == 401 && !strings.Contains(rec.Body.String(), `action="/login"`):
		t.Errorf("%s: 401 page without the sign-in form", what)
	}
}
