package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"consult/comments"
	"consult/internal/redistest"
	"consult/store"
)

const apiToken = "test-admin-token"

type apiEnv struct {
	srv   *httptest.Server
	cs    *store.Comments
	ds    *store.Drafts
	redis *redistest.Server
	log   *logSink
}

type alwaysReady struct{}

func (alwaysReady) Ready(context.Context) ([]string, error) { return nil, nil }

func newAPI(t *testing.T, opts ...func(*Config)) *apiEnv {
	t.Helper()
	rs := redistest.Start(t)
	sink := &logSink{}
	cfg, ds, cs := storeConfig(rs.Client(t), nil, sink)
	cfg.AdminToken = apiToken
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &apiEnv{srv: srv, cs: cs, ds: ds, redis: rs, log: sink}
}

func (a *apiEnv) do(t *testing.T, method, path, token string, body []byte, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return res, out
}

// createDraft creates a draft through the API. An opening not in the future is
// left out: the server publishes the draft now.
func createDraft(t *testing.T, a *apiEnv, id string, opens, closes time.Time) {
	t.Helper()
	in := map[string]any{
		"id": id, "title": "测试<script>alert(1)</script>办法", "bureau": "司法局", "kind": "rule", "summary": "说明",
		"text":      "第一章 总则\n第一条 为了规范管理，制定本办法。\n第二条 本办法适用于本市。\n",
		"closes_at": closes.Format(time.RFC3339), "digest_recipients": []string{"office@example.gov.cn"},
	}
	if opens.After(time.Now()) {
		in["opens_at"] = opens.Format(time.RFC3339)
	}
	body, _ := json.Marshal(in)
	res, out := a.do(t, "POST", "/api/v1/drafts", apiToken, body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create draft: %d %v", res.StatusCode, out)
	}
}

func TestAPIDraftLifecycle(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "open-one", now.Add(-time.Hour), now.Add(time.Hour))
	createDraft(t, a, "later-one", now.Add(time.Hour), now.Add(2*time.Hour))

	// Creating needs the token, and an id once.
	if res, out := a.do(t, "POST", "/api/v1/drafts", "", []byte(`{}`)); res.StatusCode != 401 || out["code"] != "unauthorized" {
		t.Fatalf("no token: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "POST", "/api/v1/drafts", "wrong", []byte(`{}`)); res.StatusCode != 401 {
		t.Fatalf("wrong token: %d %v", res.StatusCode, out)
	}
	body, _ := json.Marshal(map[string]any{"id": "open-one", "title": "t", "bureau": "b", "kind": "rule", "text": "x",
		"opens_at": now.Format(time.RFC3339), "closes_at": now.Add(time.Hour).Format(time.RFC3339), "digest_recipients": []string{"a@b.cn"}})
	if res, out := a.do(t, "POST", "/api/v1/drafts", apiToken, body); res.StatusCode != 409 || out["code"] != "id_taken" {
		t.Fatalf("taken id: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "POST", "/api/v1/drafts", apiToken, []byte(`{"id":"Bad Id","kind":"poem"}`)); res.StatusCode != 422 {
		t.Fatalf("invalid draft: %d %v", res.StatusCode, out)
	} else if errs, _ := out["errors"].(map[string]any); errs["id"] == nil || errs["kind"] == nil || errs["digest_recipients"] == nil {
		t.Fatalf("invalid draft errors: %v", out)
	}

	res, out := a.do(t, "GET", "/api/v1/drafts?status=open", "", nil)
	list, _ := out["drafts"].([]any)
	if res.StatusCode != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != "open-one" {
		t.Fatalf("open list: %d %v", res.StatusCode, out)
	}
	if _, ok := list[0].(map[string]any)["digest_recipients"]; ok {
		t.Fatal("public list shows digest recipients")
	}
	_, out = a.do(t, "GET", "/api/v1/drafts?status=all", "", nil)
	if l, _ := out["drafts"].([]any); len(l) != 2 {
		t.Fatalf("all list: %v", out)
	}
	if res, out := a.do(t, "GET", "/api/v1/drafts?status=bogus", "", nil); res.StatusCode != 400 || out["code"] != "bad_query" {
		t.Fatalf("bad status: %d %v", res.StatusCode, out)
	}
	res, out = a.do(t, "GET", "/api/v1/drafts/open-one", "", nil)
	secs, _ := out["sections"].([]any)
	if res.StatusCode != 200 || len(secs) < 3 {
		t.Fatalf("get draft: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "GET", "/api/v1/drafts/nope", "", nil); res.StatusCode != 404 || out["code"] != "draft_not_found" {
		t.Fatalf("unknown draft: %d %v", res.StatusCode, out)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}

	// A comment, its receipt, its retry, and the admin listing.
	sec := secs[1].(map[string]any)["anchor"].(string)
	cbody := []byte(fmt.Sprintf(`{"section":%q,"body":"建议修改","name":"李四","contact":"li@example.cn","category":"expert"}`, sec))
	res, out = a.do(t, "POST", "/api/v1/drafts/open-one/comments", "", cbody, "Idempotency-Key", "abc")
	if res.StatusCode != 202 {
		t.Fatalf("comment: %d %v", res.StatusCode, out)
	}
	rc := out["receipt"].(map[string]any)
	_, again := a.do(t, "POST", "/api/v1/drafts/open-one/comments", "", cbody, "Idempotency-Key", "abc")
	if again["receipt"].(map[string]any)["code"] != rc["code"] {
		t.Fatalf("retry gave another receipt: %v vs %v", again, rc)
	}
	res, out = a.do(t, "GET", "/api/v1/receipts/"+rc["code"].(string), "", nil)
	if res.StatusCode != 200 || out["status"] != "queued" || out["draft_id"] != "open-one" {
		t.Fatalf("receipt: %d %v", res.StatusCode, out)
	}
	if _, ok := out["contact"]; ok {
		t.Fatal("receipt lookup shows contact")
	}
	if res, out := a.do(t, "GET", "/api/v1/receipts/9-AAAAA-AAAAA", "", nil); res.StatusCode != 404 || out["code"] != "receipt_not_found" {
		t.Fatalf("unknown receipt: %d %v", res.StatusCode, out)
	}
	if res, _ := a.do(t, "GET", "/api/v1/drafts/open-one/comments", "", nil); res.StatusCode != 401 {
		t.Fatalf("comments without token: %d", res.StatusCode)
	}
	// The admin listing pages with a cursor and shows contacts.
	a.do(t, "POST", "/api/v1/drafts/open-one/comments", "", []byte(`{"body":"第二条意见"}`))
	res, out = a.do(t, "GET", "/api/v1/drafts/open-one/comments?limit=1", apiToken, nil)
	page, _ := out["comments"].([]any)
	if res.StatusCode != 200 || len(page) != 1 || out["next"] == nil {
		t.Fatalf("admin page 1: %d %v", res.StatusCode, out)
	}
	if first := page[0].(map[string]any); first["contact"] != "li@example.cn" || first["code"] != rc["code"] || first["status"] != "queued" {
		t.Fatalf("admin comment: %v", first)
	}
	res, out = a.do(t, "GET", "/api/v1/drafts/open-one/comments?limit=1&after="+out["next"].(string), apiToken, nil)
	if page, _ := out["comments"].([]any); res.StatusCode != 200 || len(page) != 1 || page[0].(map[string]any)["body"] != "第二条意见" {
		t.Fatalf("admin page 2: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "GET", "/api/v1/drafts/open-one/comments?after=x", apiToken, nil); res.StatusCode != 400 {
		t.Fatalf("bad cursor: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "POST", "/api/v1/drafts/later-one/comments", "", []byte(`{"body":"早"}`)); res.StatusCode != 409 || out["code"] != "window_not_open" {
		t.Fatalf("upcoming: %d %v", res.StatusCode, out)
	}
	_, out = a.do(t, "GET", "/api/v1/drafts/open-one", "", nil)
	if out["comment_count"] != 2.0 {
		t.Fatalf("comment_count: %v", out["comment_count"])
	}
	if res, _ := a.do(t, "GET", "/metrics", "", nil); res.StatusCode != 200 {
		t.Fatalf("metrics: %d", res.StatusCode)
	}
	if res, out := a.do(t, "GET", "/readyz", "", nil); res.StatusCode != 200 || out["status"] != "ready" {
		t.Fatalf("readyz: %d %v", res.StatusCode, out)
	}
}

// TestAPIBadInput: every bad request gets a clear 4xx with a problem document, and
// nothing is stored.
func TestAPIBadInput(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "bad-input", now.Add(-time.Hour), now.Add(time.Hour))
	big := bytes.Repeat([]byte("a"), 10<<20)
	cases := []struct {
		name   string
		path   string
		body   []byte
		status int
		code   string
		field  string
	}{
		{"malformed JSON", "/api/v1/drafts/bad-input/comments", []byte(`{"body":`), 400, "malformed_json", ""},
		{"not an object", "/api/v1/drafts/bad-input/comments", []byte(`"hello"`), 422, "invalid", ""},
		{"two values", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"a"}{"body":"b"}`), 400, "malformed_json", ""},
		{"wrong type body", "/api/v1/drafts/bad-input/comments", []byte(`{"body":42}`), 422, "invalid", "body"},
		{"wrong type consent", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"x","publish_name":"yes"}`), 422, "invalid", "publish_name"},
		{"unknown field", "/api/v1/drafts/bad-input/comments", []byte(`{"boddy":"x"}`), 422, "invalid", "boddy"},
		{"invalid UTF-8", "/api/v1/drafts/bad-input/comments", []byte("{\"body\":\"\xff\xfe\"}"), 400, "invalid_utf8", ""},
		{"10 MB body", "/api/v1/drafts/bad-input/comments", append(append([]byte(`{"body":"`), big...), '"', '}'), 413, "too_large", ""},
		{"empty body", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"  "}`), 422, "invalid", "body"},
		{"too long", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"` + strings.Repeat("长", 5001) + `"}`), 422, "invalid", "body"},
		{"unknown section", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"x","section":"art99"}`), 422, "invalid", "section"},
		{"bad category", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"x","category":"alien"}`), 422, "invalid", "category"},
		{"long name", "/api/v1/drafts/bad-input/comments", []byte(`{"body":"x","name":"` + strings.Repeat("名", 101) + `"}`), 422, "invalid", "name"},
		{"unknown draft", "/api/v1/drafts/no-such-draft/comments", []byte(`{"body":"x"}`), 404, "draft_not_found", ""},
		{"bad draft id", "/api/v1/drafts/..%2F..%2Fetc/comments", []byte(`{"body":"x"}`), 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, out := a.do(t, "POST", tc.path, "", tc.body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", res.StatusCode, tc.status, out)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type %q", ct)
			}
			if tc.code != "" && out["code"] != tc.code {
				t.Fatalf("code %v, want %s (%v)", out["code"], tc.code, out)
			}
			if tc.field != "" {
				if errs, _ := out["errors"].(map[string]any); errs[tc.field] == nil {
					t.Fatalf("no message for %s: %v", tc.field, out)
				}
			}
		})
	}
	if c, err := a.cs.Counts(context.Background(), "bad-input"); err != nil || c.Submitted != 0 {
		t.Fatalf("bad input stored something: %+v %v", c, err)
	}

	// HTML and script are kept as text and come back escaped in JSON.
	res, out := a.do(t, "POST", "/api/v1/drafts/bad-input/comments", "", []byte(`{"body":"<script>alert('x')</script><b>粗</b>"}`))
	if res.StatusCode != 202 {
		t.Fatalf("html body: %d %v", res.StatusCode, out)
	}
	req, _ := http.NewRequest("GET", a.srv.URL+"/api/v1/drafts/bad-input", nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if bytes.Contains(raw, []byte("<script>")) {
		t.Fatalf("draft JSON carries raw <script>: %s", raw)
	}
}

// TestAPIRedisDown: with Redis unreachable the intake answers 503 with Retry-After,
// never a receipt and never a 500.
func TestAPIRedisDown(t *testing.T) {
	for name, limits := range map[string]bool{"limits on": true, "limits off": false} {
		t.Run(name, func(t *testing.T) {
			if limits {
				apiRedisDown(t, newAPI(t))
			} else {
				// The store itself marks its outages; no limiter in front of it.
				apiRedisDown(t, newAPI(t, func(c *Config) { c.Limiter = nil }))
			}
		})
	}
}

func apiRedisDown(t *testing.T, a *apiEnv) {
	now := time.Now()
	createDraft(t, a, "down-draft", now.Add(-time.Hour), now.Add(time.Hour))
	if res, _ := a.do(t, "GET", "/api/v1/drafts/down-draft", "", nil); res.StatusCode != 200 {
		t.Fatalf("before: %d", res.StatusCode)
	}
	a.redis.Proc.Kill()
	for _, path := range []string{"/api/v1/drafts/down-draft/comments", "/api/v1/drafts/uncached/comments"} {
		res, out := a.do(t, "POST", path, "", []byte(`{"body":"服务中断时的意见"}`))
		if res.StatusCode != 503 || out["code"] != "unavailable" || res.Header.Get("Retry-After") == "" || out["receipt"] != nil {
			t.Fatalf("%s with Redis down: %d %v %v", path, res.StatusCode, res.Header, out)
		}
	}
}

// TestAppendReceipt: the hand-written encoding equals encoding/json's.
func TestAppendReceipt(t *testing.T) {
	for _, r := range []comments.Receipt{
		{Code: "12-ABCDE-FGHJK", DraftID: "d-1", Section: "p1-i2", ReceivedAt: time.Date(2026, 11, 25, 8, 0, 0, 123e6, time.UTC), SHA256: "ab12"},
		{Code: "a\"b\\c<d>&\u2028\x01\xff中文", DraftID: "", Section: "", ReceivedAt: time.Unix(0, 0).UTC()},
	} {
		want, err := json.Marshal(struct {
			Receipt comments.Receipt `json:"receipt"`
		}{r})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendReceipt(nil, r); string(got) != string(want)+"\n" {
			t.Errorf("appendReceipt:\n got %s\nwant %s", got, want)
		}
	}
}
