package handlers

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// server holds the routes' dependencies; its methods are the handlers.
type server struct {
	Config
	pages *pages
}

// New returns an echo instance with every route registered, ready to serve. It
// fails when the templates don't parse, so a broken template stops the process at
// boot rather than on a citizen's request.
func New(cfg Config) (*echo.Echo, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("handlers: time zone: %w", err)
		}
		cfg.Location = loc
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p, err := newPages(cfg.Location)
	if err != nil {
		return nil, err
	}
	s := &server{Config: cfg, pages: p}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	s.Register(e)
	return e, nil
}

// Register is the one route table, grouped by who may call it.
func (s *server) Register(e *echo.Echo) {
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{TargetHeader: echo.HeaderXRequestID}))
	e.Use(s.logRequests)
	e.Use(middleware.Recover())
	e.Use(nosniff)

	// Operators.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics)

	// Anyone: the JSON API. Bodies are capped before decoding.
	api := e.Group("/api/v1", middleware.BodyLimit("64K"))
	api.GET("/drafts", s.apiListDrafts)
	api.GET("/drafts/:id", s.apiGetDraft)
	api.POST("/drafts/:id/comments", s.apiSubmitComment)
	api.GET("/receipts/:code", s.apiGetReceipt)

	// Admin (Bearer token) until staff accounts exist.
	admin := e.Group("/api/v1", middleware.BodyLimit("2M"), s.requireAdmin)
	admin.POST("/drafts", s.apiCreateDraft)
	admin.GET("/drafts/:id/comments", s.apiListComments)
	admin.POST("/drafts/:id/digests", s.apiRequestDigest)

	// Anyone: the pages. Forms carry a CSRF token checked against a cookie.
	web := e.Group("", pageHeaders, middleware.BodyLimit("64K"), middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup: "form:_csrf", CookieName: "consult_csrf", CookiePath: "/",
		CookieHTTPOnly: true, CookieSecure: s.Secure, CookieSameSite: http.SameSiteStrictMode,
		ErrorHandler: func(err error, c echo.Context) error { return errCSRF },
	}))
	web.GET("/", s.listPage)
	web.GET("/d/:id", s.draftPage)
	web.GET("/d/:id/comment", s.commentForm)
	web.POST("/d/:id/comment", s.submitComment)
	web.GET("/receipts", s.lookupPage)
	web.GET("/receipts/:code", s.receiptPage)
	e.GET("/static/*", s.assets, pageHeaders)
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

// requireAdmin checks the Bearer token in constant time.
func (s *server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if s.AdminToken == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.AdminToken)) != 1 {
			return errUnauthorized
		}
		return next(c)
	}
}

// logRequests logs one line per request with its id; never bodies or headers, which
// may hold personal data or the admin token.
func (s *server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		st := c.Response().Status
		lvl := slog.LevelDebug
		if st >= 500 {
			lvl = slog.LevelError
		}
		ctx := c.Request().Context()
		// Checked first: building the line's arguments costs the intake more than
		// any other middleware when nobody reads debug logs.
		if !s.Logger.Enabled(ctx, lvl) {
			return nil
		}
		s.Logger.Log(ctx, lvl, "request", "id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "path", c.Path(), "status", st, "dur", time.Since(start))
		return nil
	}
}
