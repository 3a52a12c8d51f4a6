package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/drafts"
	"consult/internal/redistest"
	"consult/record"
)

// pingReady is readiness as cmd/consultd checks it: a PING on the client.
type pingReady struct{ rdb redis.UniversalClient }

func (p pingReady) Ready(ctx context.Context) ([]string, error) { return nil, p.rdb.Ping(ctx).Err() }

// TestRedisHangs: with Redis hanging (not refusing: accepting and never
// answering), every request ends in bounded time: 503 with Retry-After and no
// receipt, the form with the text kept, /readyz "unavailable" within a second.
func TestRedisHangs(t *testing.T) {
	rs := redistest.Start(t)
	proxy := startProxy(t, rs.Addr)
	// As cmd/consultd makes it: the request's deadline bounds each command.
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	// A client that ignores deadlines, for /readyz: its bound must hold anyway.
	slow := redis.NewClient(&redis.Options{Addr: proxy.Addr})
	t.Cleanup(func() { slow.Close() })
	sink := &logSink{}
	cfg, ds, _ := storeConfig(rdb, nil, sink)
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.Ready = pingReady{slow}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	now := time.Now()
	if _, err := ds.Import(context.Background(), record.AdminToken, drafts.Draft{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther,
		Text: planText, OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"a@example.gov.cn"}}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, srv.URL+"/readyz"); !strings.Contains(got, `"ready"`) {
		t.Fatalf("readyz before: %s", got)
	}
	if _, err := ds.Get(context.Background(), "plan"); err != nil { // cached, as on a busy server
		t.Fatal(err)
	}
	proxy.freeze(true)

	timed := func(what string, bound time.Duration, f func() *http.Response) (*http.Response, string) {
		t.Helper()
		start := time.Now()
		res := f()
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		if took := time.Since(start); took > bound {
			t.Errorf("%s took %v, want at most %v", what, took, bound)
		}
		return res, b.String()
	}
	post := func(path, ct, body string) func() *http.Response {
		return func() *http.Response {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
	}

	res, body := timed("API comment", 2*time.Second, post("/api/v1/drafts/plan/comments", "application/json", `{"body":"挂起时的意见"}`))
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(body, `"code":"unavailable"`) || strings.Contains(body, "receipt") {
		t.Errorf("API comment: %d %v %s", res.StatusCode, res.Header, body)
	}
	res, body = timed("form", 2*time.Second, post("/d/plan/comment", "application/x-www-form-urlencoded",
		url.Values{"body": {"挂起时写下的意见，请保留。"}, "idempotency_key": {"k1"}}.Encode()))
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "挂起时写下的意见，请保留。") {
		t.Errorf("form: %d %v\n%s", res.StatusCode, res.Header, body)
	}
	res, body = timed("form of an uncached draft", 2*time.Second, post("/d/uncached/comment", "application/x-www-form-urlencoded",
		url.Values{"body": {"草案未缓存时的意见。"}, "idempotency_key": {"k2"}}.Encode()))
	if res.StatusCode != 503 || !strings.Contains(body, "草案未缓存时的意见。") || !strings.Contains(body, "系统暂时无法保存意见") {
		t.Errorf("form of an uncached draft: %d\n%s", res.StatusCode, body)
	}
	res, body = timed("lookup page", 2*time.Second, func() *http.Response {
		res, err := http.Get(srv.URL + "/receipts?code=1-ABCDE-FGHJK")
		if err != nil {
			t.Fatal(err)
		}
		return res
	})
	if res.StatusCode != 503 || !strings.Contains(body, `value="1-ABCDE-FGHJK"`) || !strings.Contains(body, "系统暂时无法查询回执") {
		t.Errorf("lookup page: %d\n%s", res.StatusCode, body)
	}
	res, body = timed("uncached draft", 2*time.Second, func() *http.Response {
		res, err := http.Get(srv.URL + "/api/v1/drafts/other")
		if err != nil {
			t.Fatal(err)
		}
		return res
	})
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Errorf("uncached draft: %d %s", res.StatusCode, body)
	}
	for i := range 3 { // again while the first check still hangs
		res, body = timed("readyz", 1500*time.Millisecond, func() *http.Response {
			res, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			return res
		})
		if res.StatusCode != 503 || !strings.Contains(body, `"unavailable"`) {
			t.Errorf("readyz %d: %d %s", i, res.StatusCode, body)
		}
	}
	if n := len(sink.lines("storage unavailable")); n < 3 {
		t.Errorf("%d outages logged, want one per storage failure:\n%s", n, sink)
	}
}

// TestBrokenBodies: a body that ends before its Content-Length, or trickles in
// past the server's read deadline, is the client's doing: 400 or 408, a problem
// on the API and the form with what arrived on the pages; never an outage, and
// nothing stored. A real TCP client sends the bytes.
func TestBrokenBodies(t *testing.T) {
	rs := redistest.Start(t)
	sink := &logSink{}
	cfg, ds, cs := storeConfig(rs.Client(t), nil, sink)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadTimeout: 500 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	now := time.Now()
	if _, err := ds.Import(context.Background(), record.AdminToken, drafts.Draft{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther,
		Text: planText, OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"a@example.gov.cn"}}); err != nil {
		t.Fatal(err)
	}

	head := func(path, ct string, length int) string {
		return "POST " + path + " HTTP/1.1\r\nHost: consult.test\r\nContent-Type: " + ct + "\r\nSec-Fetch-Site: same-origin\r\n" +
			"Content-Length: " + strconv.Itoa(length) + "\r\n\r\n"
	}
	// In the order a browser sends the form's fields.
	typed := "idempotency_key=k1&section=p1&body=" + url.QueryEscape("网络中断前写下的意见，请保留") + "&category=expert&name=" + url.QueryEscape("孙八")
	// Cut inside the body's last escape: "…请保留" loses its last character.
	cut := typed[:strings.Index(typed, "&category")-4]
	apiBody := `{"body":"网络中断前的意见`

	for _, tc := range []struct {
		name, path, ct string
		length         int
		pause          time.Duration
		parts          []string
		status         int
		want           []string
	}{
		{"API, cut short", "/api/v1/drafts/plan/comments", "application/json", len(apiBody) + 50, 0, []string{apiBody},
			400, []string{"application/problem+json", `"code":"incomplete_body"`}},
		{"API, trickled", "/api/v1/drafts/plan/comments", "application/json", 40, 150 * time.Millisecond, strings.Split(`{"body":"慢慢来"}`, ""),
			408, []string{"application/problem+json", `"code":"body_timeout"`}},
		{"form, cut short", "/d/plan/comment", "application/x-www-form-urlencoded", len(typed) + 100, 0, []string{cut},
			400, []string{"没有完整传送到本系统", "网络中断前写下的意见，请保</textarea>", `name="section" value="p1"`, "一、总体要求", `type="submit"`}},
		{"form, trickled", "/d/plan/comment", "application/x-www-form-urlencoded", len(typed), 150 * time.Millisecond,
			[]string{typed[:strings.Index(typed, "&name")], "&", "n", "a", "m", "e"},
			408, []string{"传送时间过长", "网络中断前写下的意见，请保留", `<option value="expert" selected>`, `type="submit"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := rawHTTP(t, ln.Addr().String(), head(tc.path, tc.ct, tc.length), tc.pause, tc.parts...)
			if !strings.HasPrefix(res, "HTTP/1.1 "+strconv.Itoa(tc.status)+" ") {
				t.Fatalf("answer:\n%s", res)
			}
			for _, w := range tc.want {
				if !strings.Contains(res, w) {
					t.Errorf("answer lacks %q:\n%s", w, res)
				}
			}
		})
	}
	if n, _ := cs.Counts(context.Background(), "plan"); n.Submitted != 0 {
		t.Errorf("%d comments stored from broken bodies", n.Submitted)
	}
	if bad := sink.lines("level=WARN"); len(bad) > 0 {
		t.Errorf("broken bodies logged as trouble: %q", bad)
	}
	if bad := sink.lines("level=ERROR"); len(bad) > 0 {
		t.Errorf("broken bodies logged as errors: %q", bad)
	}
	if n := len(sink.lines("route=/d/:id/comment", "status=400")) + len(sink.lines("route=/api/v1/drafts/:id/comments", "status=408")); n != 2 {
		t.Errorf("request lines:\n%s", sink)
	}
}

func TestPartialForm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want url.Values
	}{
		{"a=1&b=2", url.Values{"a": {"1"}, "b": {"2"}}},
		{"a=1&b=%E6%84%8F%E8%A7", url.Values{"a": {"1"}, "b": {"意"}}},      // a character cut in two
		{"a=1&b=%E6%84%8F%E8%A7%8", url.Values{"a": {"1"}, "b": {"意"}}},    // an escape cut
		{"a=1&b=%E6%84%8F%", url.Values{"a": {"1"}, "b": {"意"}}},           // an escape just begun
		{"a=1&b=x%zz&c=3", url.Values{"a": {"1"}, "c": {"3"}}},             // a broken field in the middle is dropped
		{"a=%E6%84%8F+%E8%A7%81&bo", url.Values{"a": {"意 见"}, "bo": {""}}}, // a name cut
		{"", url.Values{}},
	} {
		got := partialForm(tc.in)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(tc.want)
		if string(gj) != string(wj) {
			t.Errorf("partialForm(%q) = %s, want %s", tc.in, gj, wj)
		}
	}
}

// TestMediaType: the API takes bodies as application/json only, so a plain HTML
// form on another site cannot post to it.
func TestMediaType(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "mt", now.Add(-time.Hour), now.Add(time.Hour))
	for _, tc := range []struct {
		method, path, ct, token string
		status                  int
	}{
		{"POST", "/api/v1/drafts/mt/comments", "text/plain", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "application/x-www-form-urlencoded", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "multipart/form-data; boundary=x", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "application/json; charset=latin1", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "application/jsonx", "", 415},
		{"POST", "/api/v1/drafts/mt/comments", "application/json", "", 202},
		{"POST", "/api/v1/drafts/mt/comments", "Application/JSON; charset=UTF-8", "", 202},
		{"PUT", "/api/v1/drafts/mt/limits", "text/plain", apiToken, 415},
		{"POST", "/api/v1/drafts", "text/plain", apiToken, 415},
	} {
		req, _ := http.NewRequest(tc.method, a.srv.URL+tc.path, strings.NewReader(`{"body":"跨站表单"}`))
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		req.Header.Set("Origin", "https://elsewhere.example")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != tc.status || (tc.status == 415 && out["code"] != "unsupported_media_type") {
			t.Errorf("%s %s as %q: %d %v, want %d", tc.method, tc.path, tc.ct, res.StatusCode, out, tc.status)
		}
	}
	if n, _ := a.cs.Counts(context.Background(), "mt"); n.Submitted != 2 {
		t.Errorf("%d comments stored, want the 2 sent as JSON", n.Submitted)
	}
	// No body, no type needed.
	if res, _ := a.do(t, "POST", "/api/v1/drafts/mt/digests", apiToken, nil, "Content-Type", ""); res.StatusCode == 415 {
		t.Error("a body-less admin call needs a type")
	}
}
