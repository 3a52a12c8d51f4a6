package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/record"
)

// routeEnv is the whole route table on a real Redis, with a draft and a receipt
// to fill the routes' parameters.
type routeEnv struct {
	e     *echo.Echo
	code  string
	asset string
	redis *redistest.Server
}

func newRouteEnv(t *testing.T) *routeEnv {
	t.Helper()
	rs := redistest.Start(t)
	cfg, ds, cs := storeConfig(rs.Client(t), nil, &logSink{})
	cfg.AdminToken = apiToken
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ctx := context.Background()
	if _, err := ds.Import(ctx, record.AdminToken, drafts.Draft{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther,
		Text: planText, OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"a@example.gov.cn"}}); err != nil {
		t.Fatal(err)
	}
	r, err := cs.Submit(ctx, comments.Submission{DraftID: "plan", Body: "意见"})
	if err != nil {
		t.Fatal(err)
	}
	env := &routeEnv{e: e, code: r.Code, redis: rs}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	m := regexp.MustCompile(`/static/(app\.[0-9a-f]+\.css)`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no stylesheet on the list page")
	}
	env.asset = m[1]
	return env
}

// target is a request path for a route, its parameters filled in.
func (r *routeEnv) target(path string) string {
	path = strings.ReplaceAll(path, ":id", "plan")
	path = strings.ReplaceAll(path, ":code", r.code)
	if strings.HasPrefix(path, "/static/") {
		return strings.Replace(path, "*", r.asset, 1)
	}
	return strings.Replace(path, "*", "nowhere", 1)
}

// routeKind says which headers a route must carry.
func routeKind(path string) string {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return "operator"
	case strings.HasPrefix(path, "/api/"):
		return "api"
	case strings.HasPrefix(path, "/static/"):
		return "static"
	}
	return "page" // anything else, a new route among them, is a page until said otherwise
}

// TestSecurityHeadersEveryRoute walks the route table and asks every route,
// parameters filled in, for the headers its kind must carry: a route added
// without them fails here.
func TestSecurityHeadersEveryRoute(t *testing.T) {
	env := newRouteEnv(t)
	kinds := map[string]int{}
	for _, rt := range env.e.Routes() {
		method := rt.Method
		if method == echo.RouteNotFound {
			method = http.MethodGet
		}
		kind := routeKind(rt.Path)
		kinds[kind]++
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			var body io.Reader
			if method == http.MethodPost || method == http.MethodPut {
				body = strings.NewReader(`{}`)
			}
			req := httptest.NewRequest(method, env.target(rt.Path), body)
			if strings.HasPrefix(rt.Path, "/api/") {
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			env.e.ServeHTTP(rec, req)
			h := rec.Header()
			want := map[string]string{"X-Content-Type-Options": "nosniff"}
			switch kind {
			case "page":
				want["X-Frame-Options"] = "DENY"
				want["Referrer-Policy"] = "same-origin"
				want["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
				if rec.Code == http.StatusOK {
					want["Cache-Control"] = "no-store"
				}
			case "static":
				want["Content-Security-Policy"] = h.Get("Content-Security-Policy") // any, but present (checked below)
				if rec.Code == http.StatusOK {
					want["Cache-Control"] = "public, max-age=31536000, immutable"
				}
			}
			for k, v := range want {
				if got := h.Get(k); got != v || got == "" {
					t.Errorf("%s: %q, want %q (status %d)", k, got, v, rec.Code)
				}
			}
			if h.Get(echo.HeaderXRequestID) == "" {
				t.Error("no X-Request-Id")
			}
			if kind == "static" && rt.Method == http.MethodGet && rec.Code != http.StatusOK {
				t.Errorf("asset: %d", rec.Code)
			}
		})
	}
	for _, k := range []string{"page", "api", "static", "operator"} {
		if kinds[k] == 0 {
			t.Errorf("no %s route in the table: %v", k, kinds)
		}
	}
}

// TestBodyLimitEveryRoute: every route refuses a body larger than its limit
// before reading it, so that no route holds more than 2 MB of one request.
func TestBodyLimitEveryRoute(t *testing.T) {
	env := newRouteEnv(t)
	for _, rt := range env.e.Routes() {
		method := rt.Method
		if method == echo.RouteNotFound {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, env.target(rt.Path), strings.NewReader("{}"))
		req.ContentLength = 3 << 20 // declared, not sent: the limit must not wait to read it
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		env.e.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s: %d for a 3 MB body, want 413", rt.Method, rt.Path, rec.Code)
		}
	}
}

// TestBoundedUnderBurst: 500 concurrent submissions and look-ups through the
// real server on a real Redis leave no goroutine behind once they are answered.
func TestBoundedUnderBurst(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "burst", now.Add(-time.Hour), now.Add(time.Hour))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	call := func(method, path, body string) (int, error) {
		req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	// Warm up: the pools and the server's own goroutines exist before counting.
	if st, err := call("POST", "/api/v1/drafts/burst/comments", `{"body":"预热"}`); err != nil || st != 202 {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	tr.CloseIdleConnections()
	before := settledGoroutines(t, -1)

	var wg sync.WaitGroup
	statuses := make(chan int, 1000)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := call("POST", "/api/v1/drafts/burst/comments", fmt.Sprintf(`{"body":"并发意见 %d"}`, i))
			if err != nil {
				t.Error(err)
			}
			statuses <- st
			st, err = call("GET", "/api/v1/receipts/1-AAAAA-AAAAA", "")
			if err != nil {
				t.Error(err)
			}
			statuses <- st
		}()
	}
	wg.Wait()
	close(statuses)
	seen := map[int]int{}
	for st := range statuses {
		seen[st]++
	}
	// One address: past its burst it is limited. Nothing fails otherwise.
	for st := range seen {
		if st != 202 && st != 404 && st != 429 {
			t.Errorf("statuses %v", seen)
		}
	}
	tr.CloseIdleConnections()
	settledGoroutines(t, before)
}

// settledGoroutines waits until the number of goroutines is at most want plus a
// margin (want < 0: until it stops changing) and returns it. It polls: what is
// waited for is the count, not a time.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	const margin = 5
	deadline := time.Now().Add(15 * time.Second)
	last, stable := -1, 0
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		switch {
		case want >= 0 && n <= want+margin:
			return n
		case want < 0 && n == last:
			if stable++; stable == 5 {
				return n
			}
		default:
			stable = 0
		}
		last = n
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprofGoroutines(&buf)
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, want+margin, buf.String())
		}
		time.Sleep(20 * time.Millisecond) // a poll interval; the loop ends on the count
	}
}

func pprofGoroutines(w io.Writer) error {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	_, err := w.Write(buf[:n])
	return err
}

// TestRequestLog: one line per request at info, with the route pattern, never
// the path, the query, cookies, the token or the address; the client as a hash
// that is the same all day and another the next day.
func TestRequestLog(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.AdminToken = apiToken })
	openDraft(e, "secret-draft")
	c := e.client()
	c.remote = "198.51.100.23:5555"
	c.header.Set("Authorization", "Bearer "+apiToken)
	c.header.Set("X-Forwarded-For", "203.0.113.99")
	c.cookies["session"] = &http.Cookie{Name: "session", Value: "cookie-value-xyz"}
	c.get("/receipts?code=7-SECRT-QUERY")
	c.get("/d/secret-draft?lang=en")
	other := e.client()
	other.remote = "198.51.100.24:5555"
	other.get("/d/secret-draft")

	lines := e.log.lines("msg=request")
	if len(lines) != 3 {
		t.Fatalf("request lines:\n%s", e.log)
	}
	line := regexp.MustCompile(`^time=\S+ level=INFO msg=request id=[0-9a-z]+ method=GET route=(\S+) status=(\d+) dur=\S+ bytes=(\d+) client=([0-9a-f]{16})$`)
	var clients []string
	for i, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d: %s", i, l)
		}
		clients = append(clients, m[4])
		for _, bad := range []string{"SECRT", "secret-draft", "lang=", "cookie-value", apiToken, "198.51.100", "203.0.113"} {
			if strings.Contains(l, bad) {
				t.Errorf("line %d holds %q: %s", i, bad, l)
			}
		}
	}
	if !strings.Contains(lines[0], "route=/receipts status=404") || !strings.Contains(lines[1], "route=/d/:id status=200") {
		t.Errorf("lines:\n%s", strings.Join(lines, "\n"))
	}
	if clients[0] != clients[1] || clients[0] == clients[2] {
		t.Errorf("client hashes %v: want one client twice, then another", clients)
	}

	s, _, err := newServer(Config{Secret: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	day := func(tm time.Time, ip string) string {
		return string(s.keys.logKey(tm).sum(nil, clientAddr(ip), 8))
	}
	d1 := time.Date(2026, 11, 26, 0, 0, 1, 0, time.UTC)
	if day(d1, "198.51.100.23") != day(d1.Add(23*time.Hour), "198.51.100.23") {
		t.Error("one client, one day: two hashes")
	}
	if day(d1, "198.51.100.23") == day(d1.Add(24*time.Hour), "198.51.100.23") {
		t.Error("one client, two days: one hash")
	}
	if day(d1, "198.51.100.23") == string(s.keys.client.sum(nil, clientAddr("198.51.100.23"), 8)) {
		t.Error("the log's hash is the rate limiter's")
	}
}

// BenchmarkRequestLog is what a request's log line costs the intake.
func BenchmarkRequestLog(b *testing.B) {
	s, e, err := newServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	e.GET("/bench", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	_ = s
	req := httptest.NewRequest("GET", "/bench", nil)
	b.ReportAllocs()
	for b.Loop() {
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkRequestNoLog(b *testing.B) {
	_, e, err := newServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		b.Fatal(err)
	}
	e.GET("/bench", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	req := httptest.NewRequest("GET", "/bench", nil)
	b.ReportAllocs()
	for b.Loop() {
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
}
