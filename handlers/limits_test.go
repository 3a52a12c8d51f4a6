package handlers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"consult/comments"
	"consult/drafts"
	"consult/record"
)

// TestRateLimits: a client over its limit gets 429 with Retry-After (a problem
// on the API, the form with the text on the pages); another client is not
// touched; a draft's own SubmitsPerHour counts; look-ups have their own budget.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	d := openDraft(e, "tight")
	if err := e.ds.SetLimits(context.Background(), record.AdminToken, d.ID, drafts.Limits{SubmitsPerHour: 2}); err != nil {
		t.Fatal(err)
	}
	post := func(c *client, draft, body string) response {
		return c.do(http.MethodPost, "/d/"+draft+"/comment", url.Values{"body": {body}, "name": {"赵六"}, "idempotency_key": {newIdempotencyKey()}})
	}
	a, b := e.client(), e.client()
	a.header.Set("Sec-Fetch-Site", "same-origin")
	b.header.Set("Sec-Fetch-Site", "same-origin")
	b.remote = "198.51.100.7:4000"

	// 2 an hour is a burst of 1: the second comment waits half an hour.
	if r := post(a, "tight", "第一条意见。"); r.Code != http.StatusSeeOther {
		t.Fatalf("first: %d\n%s", r.Code, r.body)
	}
	r := post(a, "tight", "第二条意见，请保留。")
	r.must(t, http.StatusTooManyRequests, "短时间内从您所在的网络提交的意见较多", "第二条意见，请保留。", `value="赵六"`, `type="submit"`)
	checkPage(t, r, langZH)
	if ra, _ := strconv.Atoi(r.Header().Get("Retry-After")); ra < 25*60 || ra > 30*60 {
		t.Errorf("Retry-After %q, want about half an hour", r.Header().Get("Retry-After"))
	}
	if r := post(b, "tight", "另一位市民的意见。"); r.Code != http.StatusSeeOther {
		t.Fatalf("another client: %d\n%s", r.Code, r.body)
	}
	// The service's default (600 an hour after 60) on the other draft.
	for i := range 60 {
		if r := post(a, "plan", "意见"+strconv.Itoa(i)); r.Code != http.StatusSeeOther {
			t.Fatalf("plan comment %d: %d", i, r.Code)
		}
	}
	post(a, "plan", "第六十一条。").must(t, http.StatusTooManyRequests, "第六十一条。")
	if n, _ := e.cs.Counts(context.Background(), "plan"); n.Submitted != 60 {
		t.Errorf("plan holds %d comments, want 60", n.Submitted)
	}

	// Look-ups: 120 at once, then the page says to wait and keeps the code.
	for i := range 120 {
		if r := a.get("/receipts?code=1-AAAAA-AAAA" + string(rune('A'+i%20))); r.Code != http.StatusNotFound {
			t.Fatalf("lookup %d: %d", i, r.Code)
		}
	}
	r = a.get("/receipts?code=1-ZZZZZ-ZZZZZ&lang=en")
	r.must(t, http.StatusTooManyRequests, "Many receipts have been looked up from your network", `value="1-ZZZZZ-ZZZZZ"`)
	checkPage(t, r, langEN)
	if r.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	a.get("/receipts/1-ZZZZZ-ZZZZZ").must(t, http.StatusTooManyRequests, `value="1-ZZZZZ-ZZZZZ"`)
	b.get("/receipts?code=1-ZZZZZ-ZZZZZ").must(t, http.StatusNotFound)
}

func TestRateLimitsAPI(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "api-tight", now.Add(-time.Hour), now.Add(time.Hour))
	res, out := a.do(t, "PUT", "/api/v1/drafts/api-tight/limits", apiToken, []byte(`{"submits_per_hour":1}`))
	if res.StatusCode != 200 {
		t.Fatalf("set limits: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "POST", "/api/v1/drafts/api-tight/comments", "", []byte(`{"body":"一"}`)); res.StatusCode != 202 {
		t.Fatalf("first: %d %v", res.StatusCode, out)
	}
	res, out = a.do(t, "POST", "/api/v1/drafts/api-tight/comments", "", []byte(`{"body":"二"}`))
	if res.StatusCode != 429 || out["code"] != "rate_limited" || out["receipt"] != nil ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("second: %d %v %v", res.StatusCode, res.Header, out)
	}
	if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra < 3000 || ra > 3600 {
		t.Errorf("Retry-After %q, want about an hour", res.Header.Get("Retry-After"))
	}
	for i := range 121 {
		res, out = a.do(t, "GET", "/api/v1/receipts/1-AAAAA-AAAAA", "", nil)
		if i < 120 && res.StatusCode != 404 {
			t.Fatalf("lookup %d: %d", i, res.StatusCode)
		}
	}
	if res.StatusCode != 429 || out["code"] != "rate_limited" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("lookup 121: %d %v", res.StatusCode, out)
	}
	if body := get(t, a.srv.URL+"/metrics"); !strings.Contains(body, "consult_rate_limited_comments_total 1\n") ||
		!strings.Contains(body, "consult_rate_limited_lookups_total 1\n") {
		t.Errorf("metrics:\n%s", body)
	}
}

// TestForwardedFor: X-Forwarded-For names the client only when the connection
// comes from a trusted proxy; from anyone else it is ignored, so that a script
// cannot take a new identity per request.
func TestForwardedFor(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	e := newEnv(t, nil, func(c *Config) { c.TrustedProxies = []*net.IPNet{proxies} })
	d := openDraft(e, "plan")
	if err := e.ds.SetLimits(context.Background(), record.AdminToken, d.ID, drafts.Limits{SubmitsPerHour: 1}); err != nil {
		t.Fatal(err)
	}
	post := func(remote, xff string) int {
		c := e.client()
		c.remote = remote
		c.header.Set("Sec-Fetch-Site", "same-origin")
		if xff != "" {
			c.header.Set("X-Forwarded-For", xff)
		}
		return c.do(http.MethodPost, "/d/plan/comment", url.Values{"body": {"意见"}, "idempotency_key": {newIdempotencyKey()}}).Code
	}
	for _, tc := range []struct {
		name, remote, xff string
		want              int
	}{
		{"untrusted peer", "203.0.113.5:1000", "198.51.100.1", http.StatusSeeOther},
		{"untrusted peer, another forwarded address: still the peer", "203.0.113.5:1001", "198.51.100.2", http.StatusTooManyRequests},
		{"trusted proxy: the forwarded client", "10.1.2.3:1000", "198.51.100.3", http.StatusSeeOther},
		{"the same client by another proxy", "10.9.9.9:1000", "198.51.100.3", http.StatusTooManyRequests},
		{"another client by the same proxy", "10.1.2.3:1000", "198.51.100.4", http.StatusSeeOther},
		{"a forged address left of the real client", "10.1.2.3:1000", "192.0.2.99, 198.51.100.4", http.StatusTooManyRequests},
		{"IPv6: another address in the same /64", "[2001:db8:1:2::10]:1000", "", http.StatusSeeOther},
		{"IPv6: the same /64", "[2001:db8:1:2:ffff::1]:1000", "", http.StatusTooManyRequests},
		{"IPv6: another /64", "[2001:db8:1:3::10]:1000", "", http.StatusSeeOther},
	} {
		if got := post(tc.remote, tc.xff); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestLimitsOff: with no limiter (CONSULT_LIMITS=off) one address may send as
// much as it likes: the load test's case.
func TestLimitsOff(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.Limiter = nil })
	d := openDraft(e, "plan")
	if err := e.ds.SetLimits(context.Background(), record.AdminToken, d.ID, drafts.Limits{SubmitsPerHour: 1}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.header.Set("Sec-Fetch-Site", "same-origin")
	for i := range 5 {
		if r := c.do(http.MethodPost, "/d/plan/comment", url.Values{"body": {"意见"}, "idempotency_key": {newIdempotencyKey()}}); r.Code != http.StatusSeeOther {
			t.Fatalf("comment %d: %d", i, r.Code)
		}
	}
	for i := range 200 {
		if r := c.get("/receipts?code=1-AAAAA-AAAAA"); r.Code != http.StatusNotFound {
			t.Fatalf("lookup %d: %d", i, r.Code)
		}
	}
}

// TestClientIdentity: a client is named by a keyed hash, the same for one
// address (or one IPv6 /64) and another for another, and never holding the
// address; the limit keys in Redis hold no address either.
func TestClientIdentity(t *testing.T) {
	s, _, err := newServer(Config{Secret: []byte("k1")})
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := newServer(Config{Secret: []byte("k2")})
	id := func(s *server, addr string) string {
		return string(s.keys.client.sum(nil, clientAddr(addr), 16))
	}
	a := id(s, "198.51.100.7")
	if len(a) != 32 || strings.Contains(a, "198") || a != id(s, "198.51.100.7") || a != id(s, "::ffff:198.51.100.7") {
		t.Fatalf("id %q", a)
	}
	if a == id(s, "198.51.100.8") || a == id(other, "198.51.100.7") {
		t.Error("ids collide across addresses or keys")
	}
	if id(s, "2001:db8::1") != id(s, "2001:db8::2:3") || id(s, "2001:db8::1") == id(s, "2001:db8:0:1::1") {
		t.Error("IPv6 is not grouped by /64")
	}

	// The comment carries the client's hash to the store (for its duplicate
	// flags); Redis holds hashes only.
	var rec *recordingComments
	e := newEnv(t, nil, func(c *Config) {
		rec = &recordingComments{commentStore: c.Comments}
		c.Comments = rec
	})
	openDraft(e, "plan")
	c := e.client()
	c.header.Set("Sec-Fetch-Site", "same-origin")
	c.do(http.MethodPost, "/d/plan/comment", url.Values{"body": {"意见"}})
	c.remote = "[2001:db8::1]:1"
	c.do(http.MethodPost, "/d/plan/comment", url.Values{"body": {"意见"}})
	if len(rec.clients) != 2 || len(rec.clients[0]) != 32 || rec.clients[0] == rec.clients[1] || strings.Contains(rec.clients[0], "192") {
		t.Errorf("clients passed to the store: %q", rec.clients)
	}
	c.get("/receipts?code=1-AAAAA-AAAAA")
	keys, err := e.redis.Client(t).Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var rl int
	for _, k := range keys {
		if strings.Contains(k, "192.0.2.1") || strings.Contains(k, "192.0.2") {
			t.Errorf("key %q holds the address", k)
		}
		if strings.Contains(k, ":rl:") {
			rl++
		}
	}
	if rl != 3 || !contains(keys, "rate:consult:{plan}:rl:c:") {
		t.Errorf("limit keys in %q", keys)
	}
}

// recordingComments is the real store, noting the client each submission names.
type recordingComments struct {
	commentStore
	mu      sync.Mutex
	clients []string
}

func (r *recordingComments) Submit(ctx context.Context, sub comments.Submission) (comments.Receipt, error) {
	r.mu.Lock()
	r.clients = append(r.clients, sub.Client)
	r.mu.Unlock()
	return r.commentStore.Submit(ctx, sub)
}

func contains(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func get(t *testing.T, u string) string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestDraftFull: a draft at its storage cap refuses comments with 503
// draft_full (not an outage: no Retry-After, no outage logged); the form comes
// back with the text and no submit button.
func TestDraftFull(t *testing.T) {
	e := newEnv(t, nil)
	d := openDraft(e, "plan")
	if err := e.ds.SetLimits(context.Background(), record.AdminToken, d.ID, drafts.Limits{MaxComments: 1}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.header.Set("Sec-Fetch-Site", "same-origin")
	post := func(body string) response {
		return c.do(http.MethodPost, "/d/plan/comment", url.Values{"body": {body}, "idempotency_key": {newIdempotencyKey()}})
	}
	if r := post("第一条。"); r.Code != http.StatusSeeOther {
		t.Fatalf("first: %d\n%s", r.Code, r.body)
	}
	r := post("装不下的意见，请保留。")
	r.must(t, http.StatusServiceUnavailable, "已达到系统的容量上限", "装不下的意见，请保留。", planBureau)
	checkPage(t, r, langZH)
	if strings.Contains(r.body, `type="submit"`) || r.Header().Get("Retry-After") != "" {
		t.Errorf("a full draft offers a retry")
	}
	if len(e.log.lines("storage unavailable")) > 0 || len(e.log.lines("draft full")) != 1 {
		t.Errorf("log:\n%s", e.log)
	}
}
