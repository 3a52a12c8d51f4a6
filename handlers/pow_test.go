package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"consult/drafts"
	"consult/record"
)

// solve finds a nonce for a challenge, as the page's script does.
func solve(t testing.TB, challenge string, bits int) string {
	t.Helper()
	for n := 0; n < 1<<30; n++ {
		nonce := strconv.Itoa(n)
		if leadingZeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) >= bits {
			return nonce
		}
	}
	t.Fatal("no nonce found")
	return ""
}

// unsolved returns a nonce that does NOT meet the challenge.
func unsolved(challenge string, bits int) string {
	for n := 0; ; n++ {
		nonce := strconv.Itoa(n)
		if leadingZeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) < bits {
			return nonce
		}
	}
}

// TestCheckProof: what a proof must be, reason by reason.
func TestCheckProof(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, _, err := newServer(Config{Now: clock, Secret: []byte("secret one")})
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := newServer(Config{Now: clock, Secret: []byte("secret two")})
	ch, exp := s.newChallenge("plan", 8)
	if !exp.Equal(now.Add(challengeTTL)) {
		t.Errorf("expires %v", exp)
	}
	good := solve(t, ch, 8)
	easy, _ := s.newChallenge("plan", 4)
	easyNonce := solve(t, easy, 4)
	foreign, _ := other.newChallenge("plan", 8)
	forged := strings.Replace(ch, ".8.", ".1.", 1) // fewer bits, old MAC
	for _, tc := range []struct {
		name             string
		draft            string
		bits             int
		challenge, nonce string
		at               time.Time
		reason           string // "" = valid
	}{
		{"valid", "plan", 8, ch, good, now, ""},
		{"valid until just before it expires", "plan", 8, ch, good, exp.Add(-time.Second), ""},
		{"issued harder than now asked", "plan", 6, ch, good, now, ""},
		{"missing challenge", "plan", 8, "", good, now, "missing"},
		{"missing nonce", "plan", 8, ch, "", now, "missing"},
		{"nonce not a number", "plan", 8, ch, "12a", now, "malformed"},
		{"nonce too long", "plan", 8, ch, strings.Repeat("1", 21), now, "malformed"},
		{"wrong bits: nonce does not meet them", "plan", 8, ch, unsolved(ch, 8), now, "wrong"},
		{"wrong bits: challenge easier than the draft now asks", "plan", 8, easy, easyNonce, now, "too_easy"},
		{"bits rewritten in the challenge", "plan", 1, forged, good, now, "forged"},
		{"issued by another secret", "plan", 8, foreign, solve(t, foreign, 8), now, "forged"},
		{"other draft", "other", 8, ch, good, now, "other_draft"},
		{"expired", "plan", 8, ch, good, exp, "expired"},
		{"garbage", "plan", 8, "not.a.challenge", good, now, "forged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = tc.at
			defer func() { now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }()
			p, err := s.checkProof(tc.draft, tc.bits, tc.challenge, tc.nonce)
			var pe *proofError
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.reason == "" && (p.id == "" || p.draftID != "plan" || !p.expires.Equal(exp)):
				t.Fatalf("proof %+v", p)
			case tc.reason != "" && (!errors.As(err, &pe) || pe.reason != tc.reason):
				t.Fatalf("err %v, want reason %s", err, tc.reason)
			case tc.reason != "" && (pe.draftID != tc.draft || pe.bits != tc.bits):
				t.Fatalf("error names %s/%d, want %s/%d", pe.draftID, pe.bits, tc.draft, tc.bits)
			}
		})
	}
}

var (
	challengeRe = regexp.MustCompile(`name="pow_challenge" value="([^"]*)"`)
	bitsRe      = regexp.MustCompile(`data-pow-bits="(\d+)"`)
)

// TestProofOfWorkForm: a draft that asks for a proof of work gets a challenge
// on its form; without a solution, or with one used before, the form comes back
// (428) with the text and a fresh challenge; solved, the comment is taken once.
func TestProofOfWorkForm(t *testing.T) {
	e := newEnv(t, nil)
	d := openDraft(e, "plan")
	if err := e.ds.SetLimits(context.Background(), record.AdminToken, d.ID, drafts.Limits{PoWBits: 10}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.header.Set("Sec-Fetch-Site", "same-origin")
	r := c.get("/d/plan/comment")
	r.must(t, http.StatusOK, `data-pow-bits="10"`, `name="pow_nonce" value=""`, "<noscript>", "需要启用浏览器的 JavaScript", "/static/pow.")
	checkPage(t, r, langZH)
	ch := field(t, challengeRe, r.body)
	key := field(t, idemRe, r.body)
	form := url.Values{"body": {"需要工作量证明的意见。"}, "name": {"钱七"}, "idempotency_key": {key}, "pow_challenge": {ch}}

	r = c.do(http.MethodPost, "/d/plan/comment", form)
	r.must(t, http.StatusPreconditionRequired, "验证没有完成", "需要工作量证明的意见。", `value="钱七"`)
	checkPage(t, r, langZH)
	if fresh := field(t, challengeRe, r.body); fresh == ch {
		t.Error("the form came back with the same challenge")
	}

	form.Set("pow_nonce", unsolved(ch, 10))
	c.do(http.MethodPost, "/d/plan/comment", form).must(t, http.StatusPreconditionRequired, "安全验证已经失效", "需要工作量证明的意见。")

	form.Set("pow_nonce", solve(t, ch, 10))
	r = c.do(http.MethodPost, "/d/plan/comment", form)
	if r.Code != http.StatusSeeOther {
		t.Fatalf("solved: %d\n%s", r.Code, r.body)
	}
	// The same proof again, for another comment: refused.
	form.Set("idempotency_key", newIdempotencyKey())
	form.Set("body", "另一条意见。")
	c.do(http.MethodPost, "/d/plan/comment", form).must(t, http.StatusPreconditionRequired, "另一条意见。")
	if n, _ := e.cs.Counts(context.Background(), "plan"); n.Submitted != 1 {
		t.Errorf("%d comments stored, want 1", n.Submitted)
	}
	// A draft without it has no challenge and no script work.
	openDraft(e, "free")
	if r := c.get("/d/free/comment"); strings.Contains(r.body, "pow_") || strings.Contains(r.body, "noscript") {
		t.Error("a draft without proof of work shows one")
	}
}

// TestProofOfWorkAPI: the API answers a missing or bad proof with 428 and a
// fresh challenge; solving that one gets the receipt.
func TestProofOfWorkAPI(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	createDraft(t, a, "pow-api", now.Add(-time.Hour), now.Add(time.Hour))
	for _, tc := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"pow_bits":23}`, 422, "pow_bits"},
		{`{"pow_bits":-1}`, 422, "pow_bits"},
		{`{"submits_per_hour":-5}`, 422, "submits_per_hour"},
		{`{"pow_bit":3}`, 422, "pow_bit"},
	} {
		res, out := a.do(t, "PUT", "/api/v1/drafts/pow-api/limits", apiToken, []byte(tc.body))
		if errs, _ := out["errors"].(map[string]any); res.StatusCode != tc.status || errs[tc.field] == nil {
			t.Errorf("limits %s: %d %v", tc.body, res.StatusCode, out)
		}
	}
	if res, _ := a.do(t, "PUT", "/api/v1/drafts/pow-api/limits", "", []byte(`{"pow_bits":8}`)); res.StatusCode != 401 {
		t.Errorf("limits without the token: %d", res.StatusCode)
	}
	if res, out := a.do(t, "PUT", "/api/v1/drafts/nope/limits", apiToken, []byte(`{"pow_bits":8}`)); res.StatusCode != 404 {
		t.Errorf("limits of no draft: %d %v", res.StatusCode, out)
	}
	res, out := a.do(t, "PUT", "/api/v1/drafts/pow-api/limits", apiToken, []byte(`{"pow_bits":8}`))
	if res.StatusCode != 200 || out["limits"].(map[string]any)["pow_bits"] != 8.0 {
		t.Fatalf("set limits: %d %v", res.StatusCode, out)
	}

	res, out = a.do(t, "POST", "/api/v1/drafts/pow-api/comments", "", []byte(`{"body":"无证明"}`))
	p, _ := out["proof"].(map[string]any)
	if res.StatusCode != 428 || out["code"] != "proof_required" || p == nil || p["bits"] != 8.0 || p["challenge"] == "" || out["receipt"] != nil {
		t.Fatalf("no proof: %d %v", res.StatusCode, out)
	}
	ch := p["challenge"].(string)
	body, _ := json.Marshal(map[string]any{"body": "有证明", "proof": map[string]string{"challenge": ch, "nonce": solve(t, ch, 8)}})
	if res, out := a.do(t, "POST", "/api/v1/drafts/pow-api/comments", "", body); res.StatusCode != 202 {
		t.Fatalf("solved: %d %v", res.StatusCode, out)
	}
	res, out = a.do(t, "POST", "/api/v1/drafts/pow-api/comments", "", body)
	if res.StatusCode != 428 || out["code"] != "proof_required" || !strings.Contains(fmt.Sprint(out["detail"]), "used") {
		t.Fatalf("reused: %d %v", res.StatusCode, out)
	}
	if body := get(t, a.srv.URL+"/metrics"); !strings.Contains(body, "consult_proofs_refused_total 2\n") {
		t.Errorf("metrics:\n%s", body)
	}
}

// TestHoneypot: a form with the hidden field filled looks taken (a thank-you
// page) but nothing is stored, no receipt is given, and the metric counts it.
func TestHoneypot(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	c := e.client()
	r := c.get("/d/plan/comment")
	r.must(t, http.StatusOK, `<div class="hp" aria-hidden="true">`,
		`<input type="text" id="website" name="website" value="" tabindex="-1" autocomplete="off">`)
	token := field(t, csrfRe, r.body)
	r = c.do(http.MethodPost, "/d/plan/comment", url.Values{"_csrf": {token}, "body": {"广告：点击领取"}, "website": {"http://spam.example"}})
	r.must(t, http.StatusOK, "感谢您的参与")
	checkPage(t, r, langZH)
	if strings.Contains(r.body, "回执编号") || strings.Contains(r.body, "/receipts/") || strings.Contains(r.body, "广告") {
		t.Errorf("the honeypot page looks like a receipt:\n%s", r.body)
	}
	if n, _ := e.cs.Counts(context.Background(), "plan"); n.Submitted != 0 {
		t.Errorf("%d comments stored", n.Submitted)
	}
	if m := c.get("/metrics"); !strings.Contains(m.body, "consult_honeypot_total 1\n") {
		t.Errorf("metrics:\n%s", m.body)
	}
}
