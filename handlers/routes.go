package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"consult/accounts"
	"consult/record"
)

// server holds the routes' dependencies; its methods are the handlers.
type server struct {
	Config
	pages *pages
	keys  *secrets
	// trusted tells whether an address is one of Config.TrustedProxies.
	trusted func(ip string) bool
	probe   readinessProbe
	// paths are the route table's, by name: what every link is built from.
	paths  routePaths
	counts counters
	// warnEvery throttles the warnings of 503 answers.
	warnEvery logThrottle
}

// counters are the web layer's own metrics.
type counters struct {
	honeypot, limitedComments, limitedLookups, proofsRefused, unavailable atomic.Int64
}

// New returns an echo instance with every route registered, ready to serve. It
// fails when the templates don't parse, so a broken template stops the process at
// boot rather than on a citizen's request.
func New(cfg Config) (*echo.Echo, error) {
	_, e, err := newServer(cfg)
	return e, err
}

func newServer(cfg Config) (*server, *echo.Echo, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, nil, fmt.Errorf("handlers: time zone: %w", err)
		}
		cfg.Location = loc
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	p, err := newPages(cfg.Location)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Accounts == nil {
		cfg.Accounts = noAccounts{}
	}
	s := &server{Config: cfg, pages: p, keys: newSecrets(cfg.Secret)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor, s.trusted = clientIP(cfg.TrustedProxies)
	s.Register(e)
	return s, e, nil
}

// draftPath is a draft's page, which DraftPath spells for links from outside.
const draftPath = "/d/:id"

// commentPath is the comment form's route, which the error mapper knows.
const commentPath = "/d/:id/comment"

// digestFilePath is the download route: the shape notify's links have.
const digestFilePath = "/digests/:draft/:job/:file"

// apiRoot is where the JSON API lives: every path under it, routed or not, is
// answered with problem+json (handleError).
const apiRoot = "/api/"

// apiV1 is the prefix of the API's routes.
const apiV1 = apiRoot + "v1"

// Route names: what handlers and templates build URLs from (routePaths).
const (
	routeList        = "list"
	routeDraft       = "draft"
	routeComment     = "comment"
	routeLookup      = "lookup"
	routeReceipt     = "receipt"
	routeLogin       = "login"
	routeLogout      = "logout"
	routeAccount     = "account"
	routePassword    = "account.password"
	routeTokens      = "account.tokens"
	routeRevoke      = "account.revoke"
	routeReadyz      = "readyz"
	routeAPIDraft    = "api.draft"
	routeAPIUsers    = "api.users"
	routeDigestFile  = "digest.file"
	routeStaticAsset = "static"
)

// Register is the one route table, grouped by who may call it. Every route a
// page or a handler links to is named; URLs are built from the names
// (routePaths), never spelled elsewhere.
func (s *server) Register(e *echo.Echo) {
	e.Use(s.requestID)
	e.Use(s.logRequests)
	e.Use(middleware.Recover())
	e.Use(nosniff)
	e.Use(s.deadline)
	// A ceiling for every route, the admin API's; each group below narrows it.
	e.Use(middleware.BodyLimit("2M"))

	// Operators.
	e.GET("/healthz", s.healthz).Name = "healthz"
	e.GET("/readyz", s.readyz).Name = routeReadyz
	e.GET("/metrics", s.metrics).Name = "metrics"

	// Staff: a Bearer token (a user's, or the admin token), then what its role
	// and scope allow on the draft's bureau (accounts.Principal.May). Declared
	// before the public group of the same prefix, whose not-found route then
	// wins: an unknown API path is 404 to anyone, not 401.
	staff := e.Group(apiV1, middleware.BodyLimit("2M"), requireJSON, s.bearer)
	staff.POST("/drafts", s.apiCreateDraft, s.may(accounts.CreateDraft)).Name = "api.drafts"
	staff.GET("/drafts/:id/comments", s.apiListComments, s.may(accounts.ReadComments)).Name = "api.comments"
	staff.GET("/drafts/:id/events", s.apiListEvents, s.may(accounts.ReadComments)).Name = "api.events"
	staff.POST("/drafts/:id/digests", s.apiRequestDigest, s.may(accounts.ManageDraft)).Name = "api.digests"
	staff.PUT("/drafts/:id/limits", s.apiSetLimits, s.may(accounts.ManageDraft)).Name = "api.limits"
	staff.GET("/users", s.apiListUsers, s.may(accounts.ReadAccounts)).Name = routeAPIUsers
	staff.POST("/users", s.apiCreateUser, s.may(accounts.ManageAccounts)).Name = routeAPIUsers
	staff.POST("/users/:name/disable", s.apiDisableUser, s.may(accounts.ManageAccounts)).Name = "api.user.disable"
	staff.GET("/bureaus", s.apiListBureaus, s.may(accounts.ReadAccounts)).Name = "api.bureaus"
	staff.GET("/staff/events", s.apiListStaffEvents, s.may(accounts.ReadAccounts)).Name = "api.staff.events"

	// Anyone: the JSON API. Bodies are JSON (so no cross-site HTML form can post
	// one) and capped before decoding.
	api := e.Group(apiV1, middleware.BodyLimit("64K"), requireJSON)
	api.GET("/drafts", s.apiListDrafts).Name = "api.drafts"
	api.GET("/drafts/:id", s.apiGetDraft).Name = routeAPIDraft
	api.POST("/drafts/:id/comments", s.apiSubmitComment).Name = "api.comments"
	api.GET("/receipts/:code", s.apiGetReceipt).Name = "api.receipt"
	// Anyone: OPTIONS on each path above, with what it allows; before any
	// credential, since the methods of a path are no secret.
	allowOptions(api, apiV1, e.Routes())

	// Anyone holding a signed link from a digest e-mail: the link is the
	// credential (notify signs and checks it), since its recipients need no
	// account; a file, but answered with the pages' headers when refused.
	e.GET(digestFilePath, s.downloadDigest, pageHeaders).Name = routeDigestFile

	// Anyone: the pages. Forms are read whole before the CSRF check, so that a
	// broken body is told apart; they carry a CSRF token checked against a cookie.
	web := e.Group("", pageHeaders, middleware.BodyLimit("64K"), readForm, middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup: "form:_csrf", CookieName: "consult_csrf", CookiePath: "/",
		CookieHTTPOnly: true, CookieSecure: s.Secure, CookieSameSite: http.SameSiteStrictMode,
		ErrorHandler: func(err error, c echo.Context) error { return errCSRF },
	}))
	// Every page answers HEAD as it answers GET (getHead).
	named(routeList, web.Match(getHead, "/", s.listPage))
	named(routeDraft, web.Match(getHead, draftPath, s.draftPage))
	named(routeComment, web.Match(getHead, commentPath, s.commentForm))
	web.POST(commentPath, s.submitComment).Name = routeComment
	named(routeLookup, web.Match(getHead, "/receipts", s.lookupPage))
	named(routeReceipt, web.Match(getHead, "/receipts/:code", s.receiptPage))

	// Staff: the pages, with a session (a cookie) and the same CSRF check.
	named(routeLogin, web.Match(getHead, "/login", s.loginPage))
	web.POST("/login", s.login).Name = routeLogin
	web.POST("/logout", s.logout).Name = routeLogout
	named(routeAccount, web.Match(getHead, "/account", s.accountPage, s.signedIn, s.may(accounts.OwnAccount)))
	web.POST("/account/password", s.changePassword, s.signedIn, s.may(accounts.OwnAccount)).Name = routePassword
	web.POST("/account/tokens", s.createToken, s.signedIn, s.may(accounts.OwnAccount)).Name = routeTokens
	web.POST("/account/tokens/:token/revoke", s.revokeToken, s.signedIn, s.may(accounts.OwnAccount)).Name = routeRevoke
	named(routeStaticAsset, e.Match(getHead, "/static/*", s.assets, pageHeaders))

	s.paths = newRoutePaths(e.Routes())
	s.pages.paths = s.paths
}

// getHead are the methods of a page: a HEAD is answered as the GET, whose body
// net/http then drops.
var getHead = []string{http.MethodGet, http.MethodHead}

// named names routes registered together (Match).
func named(name string, rs []*echo.Route) {
	for _, r := range rs {
		r.Name = name
	}
}

// allowOptions answers OPTIONS on every path of rs under prefix (g's) with
// 204 and an Allow header naming the path's methods. A path that is no route
// stays 404, to anyone.
func allowOptions(g *echo.Group, prefix string, rs []*echo.Route) {
	allow := map[string][]string{}
	for _, r := range rs {
		if r.Method != echo.RouteNotFound && strings.HasPrefix(r.Path, prefix+"/") {
			allow[r.Path] = append(allow[r.Path], r.Method)
		}
	}
	for p, methods := range allow {
		methods = append(methods, http.MethodOptions)
		sort.Strings(methods)
		v := strings.Join(slices.Compact(methods), ", ")
		g.OPTIONS(strings.TrimPrefix(p, prefix), func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderAllow, v)
			return c.NoContent(http.StatusNoContent)
		}).Name = "options"
	}
}

// routePaths are the route table's paths by route name (echo's Route.Name).
// Every URL a handler or a page links to is built from them, so that a route
// moves in one place. A name given to routes of two different paths has none.
type routePaths map[string]string

func newRoutePaths(rs []*echo.Route) routePaths {
	p, twice := routePaths{}, map[string]bool{}
	for _, r := range rs {
		if old, ok := p[r.Name]; ok && old != r.Path {
			twice[r.Name] = true
		}
		p[r.Name] = r.Path
	}
	for n := range twice {
		delete(p, n)
	}
	return p
}

// path is the named route's path with params, path-escaped, in place of its
// parameters (":id", "*"), in order. An unknown name or a wrong number of
// params is an error: a page that would link to nowhere fails to render (and
// its test fails).
func (p routePaths) path(name string, params ...string) (string, error) {
	pattern, ok := p[name]
	if !ok {
		return "", fmt.Errorf("handlers: no route named %q", name)
	}
	return fill(name, pattern, params...)
}

// DraftPath is the path of a draft's page, and DigestFilePath of the download
// of a digest job's file: the route table's, for links made outside a request
// (the digest e-mails: cmd passes them to notify.Paths; the log).
func DraftPath(id string) string { return mustFill(routeDraft, draftPath, id) }

func DigestFilePath(draftID, job, file string) string {
	return mustFill(routeDigestFile, digestFilePath, draftID, job, file)
}

func mustFill(name, pattern string, params ...string) string {
	u, err := fill(name, pattern, params...)
	if err != nil {
		panic(err)
	}
	return u
}

// fill puts params, path-escaped, in place of pattern's parameters.
func fill(name, pattern string, params ...string) (string, error) {
	var b strings.Builder
	n := 0
	for seg := range strings.SplitSeq(strings.TrimPrefix(pattern, "/"), "/") {
		b.WriteByte('/')
		if strings.HasPrefix(seg, ":") || seg == "*" {
			if n == len(params) {
				return "", fmt.Errorf("handlers: route %q (%s) takes more than %d parameters", name, pattern, len(params))
			}
			b.WriteString(url.PathEscape(params[n]))
			n++
			continue
		}
		b.WriteString(seg)
	}
	if n != len(params) {
		return "", fmt.Errorf("handlers: route %q (%s) takes %d parameters, not %d", name, pattern, n, len(params))
	}
	return b.String(), nil
}

// url is path for the handlers' own, constant names: a wrong one is a bug,
// which every test of the handler finds (a panic, answered 500 by Recover).
func (p routePaths) url(name string, params ...string) string {
	u, err := p.path(name, params...)
	if err != nil {
		panic(err)
	}
	return u
}

// pageHeaders are the security headers of the pages. JSON answers get only
// nosniff: the rest means nothing to an API client and costs the intake.
var pageHeaders = middleware.SecureWithConfig(middleware.SecureConfig{
	XSSProtection: "0", XFrameOptions: "DENY", ReferrerPolicy: "same-origin",
	// Nothing on a page comes from another host (government intranets have no CDN).
	ContentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
})

func nosniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header()["X-Content-Type-Options"] = []string{"nosniff"}
		return next(c)
	}
}

// deadline bounds every storage call of a request (Config.RequestTimeout): a
// Redis that hangs gives a 503 with Retry-After in bounded time, not a request
// that waits as long as the client does.
func (s *server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == digestFilePath {
			// A download rebuilds its file before the first byte, a minute for a
			// million comments: it has a bound of its own (see downloadDigest).
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// requireJSON refuses an API body that is not application/json (415). The API
// takes no cookies, but without this check a plain HTML form on any site could
// post a comment as text/plain in a visitor's name and address.
func requireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		ct := r.Header.Get(echo.HeaderContentType)
		if ct == echo.MIMEApplicationJSON || ct == echo.MIMEApplicationJSONCharsetUTF8 {
			return next(c) // what clients send: no parsing, no allocation
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return errMediaType
		}
		for k, v := range params {
			if k != "charset" || !strings.EqualFold(v, "utf-8") {
				return errMediaType
			}
		}
		return next(c)
	}
}

// readForm reads a urlencoded form body whole and parses it, so that a body that
// breaks off (a dropped connection, a trickle past the read deadline) is the
// client's 400 or 408, with what arrived kept for the page, rather than a form
// that the CSRF check finds empty.
func readForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodPost || r.PostForm != nil {
			return next(c)
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationForm {
			return next(c)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(r.Body); err != nil {
			err = readError(err)
			if be, ok := err.(*bodyError); ok {
				be.form = partialForm(b.String())
			}
			return err
		}
		form, err := parseForm(b.String())
		if err != nil {
			return &bodyError{err: err, malformed: true, form: form}
		}
		r.PostForm = form
		r.Form = make(map[string][]string, len(form))
		for k, v := range r.URL.Query() {
			r.Form[k] = v
		}
		for k, v := range form {
			r.Form[k] = append(r.Form[k], v...)
		}
		r.Body = io.NopCloser(bytes.NewReader(nil))
		return next(c)
	}
}

// actorOf is who the record names for a change made by this request: the
// authenticated principal (a user, whether by session or token, or the admin
// token). A route that changes state without one is a route outside the staff
// groups: an error (500), never a change recorded as nobody's.
func actorOf(c echo.Context) (record.Actor, error) {
	p, _ := principalOf(c)
	a := p.Actor
	if !a.Valid() {
		return "", fmt.Errorf("handlers: %s %s: no actor for the record", c.Request().Method, c.Path())
	}
	return a, nil
}

// requestID names every request for the log line and the problem document. An
// id sent by a trusted proxy is kept, so that its log and ours line up; anyone
// else's is replaced: it would land in the log as the client wrote it.
func (s *server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if id == "" || !s.trusted(directIP(c.Request())) || !safeID(id) {
			// A log key, not a secret: math/rand's generator costs no system call.
			var b [32]byte
			id = string(strconv.AppendUint(strconv.AppendUint(b[:0], rand.Uint64(), 36), rand.Uint64(), 36))
		}
		c.Response().Header()[echo.HeaderXRequestID] = []string{id}
		return next(c)
	}
}

func safeID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// logRequests writes one line per request at info: what an operator may keep
// for six months (网络安全法 第二十一条) with no personal data in it. It holds
// the route pattern, never the path or the query (a receipt code or a draft id
// is no one's business there), the status, the time taken, the bytes sent, the
// request id and the client as a hash under the day's key (logClient). Bodies,
// cookies and the Authorization header never reach it.
func (s *server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		res := c.Response()
		lvl := slog.LevelInfo
		if res.Status >= 500 {
			lvl = slog.LevelError
		}
		ctx := c.Request().Context()
		// Checked first: with the log off (CONSULT_LOG_LEVEL=warn) a request pays
		// nothing for it.
		if !s.Logger.Enabled(ctx, lvl) {
			return nil
		}
		// LogAttrs with typed values and the client hash written into a stack
		// buffer: the intake pays for the line, not for boxing its parts.
		var buf [16]byte
		client := s.logClient(buf[:0], c, start.In(s.Location))
		s.Logger.LogAttrs(ctx, lvl, "request",
			slog.String("id", res.Header().Get(echo.HeaderXRequestID)),
			slog.String("method", c.Request().Method),
			slog.String("route", routeOf(c)),
			slog.Int("status", res.Status),
			slog.Duration("dur", time.Since(start)),
			slog.Int64("bytes", res.Size),
			slog.String("client", string(client)))
		return nil
	}
}

// routeOf is the route pattern of a request, or "-" for none (a 404 outside
// every group).
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "-"
}

// readinessProbe runs at most one readiness check at a time: callers that come
// while one runs share its answer, so that probes against a Redis that hangs
// cannot pile up goroutines.
type readinessProbe struct {
	mu  sync.Mutex
	cur *probeRun
}

type probeRun struct {
	done     chan struct{}
	warnings []string
	err      error
}

// readyTimeout is how long /readyz waits for an answer: a load balancer's probe
// must hear "not ready" from a Redis that hangs, not time out itself.
const readyTimeout = time.Second

func (p *readinessProbe) start(r Readiness) *probeRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		select {
		case <-p.cur.done:
		default:
			return p.cur
		}
	}
	run := &probeRun{done: make(chan struct{})}
	p.cur = run
	go func() {
		defer close(run.done)
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		run.warnings, run.err = r.Ready(ctx)
	}()
	return run
}
