package handlers

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/record"
	"consult/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The county draft of the project's test data (legal-requirements.md §7), cut short.
const (
	planTitle   = "洪雅县法治政府建设实施方案（征求意见稿）"
	planBureau  = "洪雅县司法局"
	planSummary = "一、起草背景\n为深入贯彻落实《法治政府建设实施纲要（2021—2025年）》，加快建设法治政府，县司法局起草了本方案。\n\n二、主要内容\n方案共三个部分：总体要求、主要任务和保障措施。"
	planText    = `为深入推进依法行政，加快建设法治政府，结合我县实际，制定本方案。
一、总体要求
（一）指导思想。坚持以习近平新时代中国特色社会主义思想为指导，全面贯彻党的二十大精神，深入学习贯彻习近平法治思想。
（二）主要目标。到2025年，政府行为全面纳入法治轨道，
职责明确、依法行政的政府治理体系日益健全。
二、主要任务
（一）依法全面履行政府职能。
1. 深化行政审批制度改革，全面实行政府权责清单制度。
2. 持续优化法治化营商环境，依法平等保护各类市场主体产权和合法权益。
（二）健全依法行政制度体系。严格落实重大行政决策程序，决策前应当听取公众意见。
三、保障措施
（一）加强组织领导。各乡镇、县级各部门主要负责人要切实履行推进法治建设第一责任人职责。
（二）加强督促检查。县司法局要会同有关部门加强督促检查，确保各项任务落到实处。
`
)

// env is the handler on a real Redis with real stores.
type env struct {
	t     *testing.T
	h     http.Handler
	ds    *store.Drafts
	cs    *store.Comments
	redis *redistest.Server
	log   *logSink
}

func newEnv(t *testing.T, now func() time.Time, opts ...func(*Config)) *env {
	t.Helper()
	rs := redistest.Start(t)
	sink := &logSink{}
	cfg, ds, cs := storeConfig(rs.Client(t), now, sink)
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, h: e, ds: ds, cs: cs, redis: rs, log: sink}
}

func (e *env) draft(d drafts.Draft) drafts.Draft {
	e.t.Helper()
	if d.Title == "" {
		d.Title = planTitle
	}
	if d.Bureau == "" {
		d.Bureau = planBureau
	}
	if d.Kind == "" {
		d.Kind = drafts.KindOther
	}
	if d.Text == "" {
		d.Text = planText
	}
	d.DigestRecipients = []string{"sfj@example.gov.cn"}
	out, err := e.ds.Import(context.Background(), record.AdminToken, d)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func openDraft(e *env, id string) drafts.Draft {
	now := time.Now()
	return e.draft(drafts.Draft{ID: id, Summary: planSummary, OpensAt: now.Add(-24 * time.Hour), ClosesAt: now.Add(10 * 24 * time.Hour)})
}

// client is a browser without a browser: it keeps cookies.
type client struct {
	e       *env
	cookies map[string]*http.Cookie
	header  http.Header
	remote  string // the connection's peer, host:port; empty: httptest's 192.0.2.1
}

func (e *env) client() *client {
	return &client{e: e, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

type response struct {
	*httptest.ResponseRecorder
	body string
}

func (c *client) get(target string) response { return c.do(http.MethodGet, target, nil) }

func (c *client) do(method, target string, form url.Values) response {
	c.e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.remote != "" {
		req.RemoteAddr = c.remote
	}
	for _, ck := range c.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	rec := httptest.NewRecorder()
	c.e.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return response{rec, rec.Body.String()}
}

func (r response) must(t *testing.T, status int, contains ...string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("status %d, want %d; body:\n%s", r.Code, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, r.body)
		}
	}
}

var (
	csrfRe     = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)
	idemRe     = regexp.MustCompile(`name="idempotency_key" value="([^"]*)"`)
	textareaRe = regexp.MustCompile(`(?s)<textarea[^>]*>(.*?)</textarea>`)
	assetRe    = regexp.MustCompile(`/static/([a-z]+)\.[0-9a-f]{10}\.([a-z]+)`)
)

// textarea is the textarea's value as a browser reads it: the HTML parser drops
// one newline right after the start tag.
func textarea(t *testing.T, body string) string {
	t.Helper()
	return strings.TrimPrefix(field(t, textareaRe, body), "\n")
}

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// checkPage holds for every page: the layout, the right language, no missing
// message, nothing the CSP would block.
func checkPage(t *testing.T, r response, l lang) {
	t.Helper()
	for _, want := range []string{`<html lang="` + string(l) + `">`, `<meta name="viewport"`, `class="skip" href="#main"`,
		`<main id="main"`, `hreflang="` + string(l.other()) + `"`, messages[l]["site.name"]} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`⟦[^⟧]*⟧`), regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`<script>`), regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`(?i)(src|href)="(https?:)?//`)} {
		if m := bad.FindString(r.body); m != "" {
			t.Errorf("page has %q", m)
		}
	}
}

func TestCatalogueComplete(t *testing.T) {
	for key := range messages[langZH] {
		if _, ok := messages[langEN][key]; !ok {
			t.Errorf("en lacks %q", key)
		}
	}
	for key := range messages[langEN] {
		if _, ok := messages[langZH][key]; !ok {
			t.Errorf("zh-CN lacks %q", key)
		}
	}
	for _, k := range drafts.Kinds {
		for _, l := range []lang{langZH, langEN} {
			if _, ok := messages[l]["kind."+string(k)]; !ok {
				t.Errorf("%s lacks kind %s", l, k)
			}
		}
	}
	for _, c := range comments.Categories {
		if _, ok := messages[langZH]["category."+string(c)]; !ok {
			t.Errorf("no category %s", c)
		}
	}
	for _, st := range []comments.Status{comments.StatusQueued, comments.StatusStored, comments.StatusRejected} {
		if _, ok := messages[langZH]["receipt.status."+string(st)]; !ok {
			t.Errorf("no receipt status %s", st)
		}
	}
}

func TestSpan(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	for _, tc := range []struct {
		d      time.Duration
		zh, en string
	}{
		{3*24*time.Hour + 4*time.Hour + 59*time.Minute, "还剩 3 天 4 小时", "3 days 4 hours left"},
		{24 * time.Hour, "还剩 1 天", "1 day left"},
		{5*time.Hour + 20*time.Minute, "还剩 5 小时 20 分钟", "5 hours 20 minutes left"},
		{time.Hour + time.Minute, "还剩 1 小时 1 分钟", "1 hour 1 minute left"},
		{12 * time.Minute, "还剩 12 分钟", "12 minutes left"},
		{30 * time.Second, "还剩 不到 1 分钟", "less than a minute left"},
	} {
		zh := tr{Lang: langZH, zone: loc, now: now}.Left(now.Add(tc.d))
		en := tr{Lang: langEN, zone: loc, now: now}.Left(now.Add(tc.d))
		if zh != tc.zh || en != tc.en {
			t.Errorf("%v: got %q, %q; want %q, %q", tc.d, zh, en, tc.zh, tc.en)
		}
	}
	if got := (tr{Lang: langZH, zone: loc, now: now}).OpensIn(now.Add(3*24*time.Hour + 4*time.Hour)); got != "3 天 4 小时后开始" {
		t.Errorf("opens in: %q", got)
	}
	if got := (tr{Lang: langEN, zone: loc, now: now}).Zone(); got != "China Standard Time" {
		t.Errorf("zone: %q", got)
	}
	if got := (tr{Lang: langEN, zone: time.UTC, now: now}).Zone(); got != "UTC (UTC+00:00)" {
		t.Errorf("zone: %q", got)
	}
}

func TestFromAcceptLanguage(t *testing.T) {
	for h, want := range map[string]lang{
		"":                          langZH,
		"zh-CN,zh;q=0.9":            langZH,
		"en-US,en;q=0.9":            langEN,
		"fr-FR":                     langZH,
		"fr-FR, en;q=0.5":           langEN,
		"zh-TW;q=0.4, en-GB;q=0.8":  langEN,
		"en;q=0, zh;q=0.1":          langZH,
		"de, en-US;q=0.7, zh;q=0.7": langEN,
		"en;q=bogus":                langZH,
	} {
		if got := fromAcceptLanguage(h); got != want {
			t.Errorf("%q: %s, want %s", h, got, want)
		}
	}
}

func FuzzFromAcceptLanguage(f *testing.F) {
	f.Add("zh-CN,zh;q=0.9,en;q=0.8")
	f.Add(";;,q=,=")
	f.Fuzz(func(t *testing.T, h string) {
		if l := fromAcceptLanguage(h); l != langZH && l != langEN {
			t.Fatalf("%q gave %q", h, l)
		}
	})
}

func TestLanguageNegotiation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	r := c.get("/")
	r.must(t, http.StatusOK, "公开征求意见")
	checkPage(t, r, langZH)
	if !strings.Contains(strings.Join(r.Header().Values("Vary"), ","), "Accept-Language") {
		t.Errorf("Vary: %q", r.Header().Values("Vary"))
	}

	c.header.Set("Accept-Language", "en-US,en;q=0.9")
	r = c.get("/")
	r.must(t, http.StatusOK, "Public consultations", `href="/?lang=zh"`)
	checkPage(t, r, langEN)

	// ?lang= wins over the header and is remembered.
	r = c.get("/?lang=zh")
	r.must(t, http.StatusOK, "公开征求意见", `href="/?lang=en"`)
	if ck := c.cookies[langCookie]; ck == nil || ck.Value != "zh" {
		t.Fatalf("lang cookie: %+v", ck)
	}
	r = c.get("/receipts")
	r.must(t, http.StatusOK, "回执查询")
	checkPage(t, r, langZH)
	r = c.get("/receipts?lang=en")
	checkPage(t, r, langEN)
	r = c.get("/")
	checkPage(t, r, langEN)
}

func TestDraftPageGolden(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := func() time.Time { return time.Date(2026, 3, 27, 19, 56, 0, 0, loc) }
	e := newEnv(t, now)
	e.draft(drafts.Draft{ID: "hongya-fzzf-2026", Summary: planSummary,
		OpensAt: time.Date(2026, 3, 1, 9, 0, 0, 0, loc), ClosesAt: time.Date(2026, 4, 1, 0, 0, 0, 0, loc)})
	e.draft(drafts.Draft{ID: "upcoming", Title: "某市公共停车场管理办法（征求意见稿）", Bureau: "某市交通运输局", Kind: drafts.KindRule,
		OpensAt: time.Date(2026, 4, 2, 9, 0, 0, 0, loc), ClosesAt: time.Date(2026, 5, 2, 9, 0, 0, 0, loc)})
	e.draft(drafts.Draft{ID: "closed", Title: "某县重大行政决策程序规定（征求意见稿）", Bureau: "某县人民政府办公室", Kind: drafts.KindMajorDecision,
		OpensAt: time.Date(2026, 1, 2, 9, 0, 0, 0, loc), ClosesAt: time.Date(2026, 2, 2, 9, 0, 0, 0, loc)})
	for _, tc := range []struct{ name, path, lang string }{
		{"draft_zh", "/d/hongya-fzzf-2026", "zh"},
		{"draft_en", "/d/hongya-fzzf-2026", "en"},
		{"list_zh", "/", "zh"},
		{"list_en", "/", "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			r := c.get(tc.path + "?lang=" + tc.lang)
			r.must(t, http.StatusOK)
			l, _ := parseLang(tc.lang)
			checkPage(t, r, l)
			// Asset hashes change with every edit of the CSS; the page around them is what is checked.
			got := assetRe.ReplaceAllString(r.body, "/static/$1.HASH.$2")
			golden(t, tc.name, got)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

func TestDraftPage(t *testing.T) {
	e := newEnv(t, nil)
	d := openDraft(e, "plan")
	c := e.client()
	r := c.get("/d/plan")
	r.must(t, http.StatusOK, planTitle, planBureau, "其他", "起草说明", "北京时间", "还剩 9 天",
		`id="p1-i2"`, `class="sec lvl-2"`, `<h3>一、总体要求</h3>`,
		`href="/d/plan/comment?section=p2-i1-n1"`, `href="/d/plan/comment"`, "对草案全文提出意见")
	// Line breaks are kept as written, for CSS to show.
	if !strings.Contains(r.body, "政府行为全面纳入法治轨道，\n职责明确") {
		t.Error("line break inside a section lost")
	}
	if n := strings.Count(r.body, "对本条提出意见"); n != len(d.Sections) {
		t.Errorf("%d comment links for %d sections", n, len(d.Sections))
	}

	now := time.Now()
	e.draft(drafts.Draft{ID: "closed", OpensAt: now.Add(-48 * time.Hour), ClosesAt: now.Add(-time.Hour)})
	r = c.get("/d/closed")
	r.must(t, http.StatusOK, "本次征求意见已于", "不再接收意见")
	if strings.Contains(r.body, "/comment") {
		t.Error("closed draft links to the comment form")
	}
	e.draft(drafts.Draft{ID: "later", OpensAt: now.Add(50 * time.Hour), ClosesAt: now.Add(800 * time.Hour)})
	r = c.get("/d/later")
	r.must(t, http.StatusOK, "本次征求意见将于", "2 天 1 小时后开始")
	if strings.Contains(r.body, "/comment") {
		t.Error("upcoming draft links to the comment form")
	}
	r = c.get("/d/later/comment")
	r.must(t, http.StatusOK, "本次征求意见将于")
	if strings.Contains(r.body, "<textarea") {
		t.Error("upcoming draft shows the form")
	}

	r = c.get("/")
	r.must(t, http.StatusOK, "正在征求意见", "即将开始", "已结束", `href="/d/plan"`, `href="/d/closed"`, `href="/d/later"`, "2 天 1 小时后开始")
	checkPage(t, r, langZH)
}

func TestEscaping(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.draft(drafts.Draft{ID: "xss", Title: `<script>alert("t")</script>标题`, Bureau: `局<img src=x onerror=alert(1)>`,
		Summary: `说明<script>alert("s")</script>`,
		Text:    "一、总则\n（一）<script>alert(\"x\")</script>正文。\n",
		OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour)})
	c := e.client()
	for _, path := range []string{"/", "/d/xss", "/d/xss/comment?section=p1-i1"} {
		r := c.get(path)
		r.must(t, http.StatusOK, `&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;标题`)
		if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") {
			t.Errorf("%s renders markup from the draft:\n%s", path, r.body)
		}
	}
	r := c.get("/d/xss")
	r.must(t, http.StatusOK, `（一）&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;正文。`, `说明&lt;script&gt;`)
	// What a person typed comes back escaped too.
	r = c.get("/d/xss/comment")
	form := url.Values{"_csrf": {field(t, csrfRe, r.body)}, "idempotency_key": {"k"}, "body": {"</textarea><script>alert(1)</script>"},
		"name": {`"><script>alert(2)</script>`}, "category": {"nonsense"}}
	r = c.do(http.MethodPost, "/d/xss/comment", form)
	r.must(t, http.StatusUnprocessableEntity, "&lt;/textarea&gt;&lt;script&gt;", `value="&#34;&gt;&lt;script&gt;`)
	if strings.Contains(r.body, "<script>alert") {
		t.Errorf("re-rendered form has markup from the input:\n%s", r.body)
	}
}

func TestCommentFlow(t *testing.T) {
	e := newEnv(t, nil)
	d := openDraft(e, "plan")
	c := e.client()

	r := c.get("/d/plan/comment?section=p2-i1-n1")
	r.must(t, http.StatusOK, "1. 深化行政审批制度改革", `name="section" value="p2-i1-n1"`, "个人信息处理说明", planBureau,
		`<input type="checkbox" id="publish_name" name="publish_name" value="1" aria-describedby="publish-hint">`,
		`<label for="body">`, `<label for="name">`, `<label for="contact">`, `<label for="category">`, `<label for="publish_name">`,
		`aria-describedby="body-hint body-count"`, "最多 5000 字", "国家机关或事业单位")
	checkPage(t, r, langZH)
	if strings.Contains(r.body, "maxlength") {
		t.Error("the body must not have maxlength: the server's limit is what is tested")
	}
	if i, j := strings.Index(r.body, "个人信息处理说明"), strings.Index(r.body, `type="submit"`); i < 0 || j < i {
		t.Error("privacy notice must come before the submit button")
	}
	token, key := field(t, csrfRe, r.body), field(t, idemRe, r.body)
	if token == "" || len(key) != 32 || c.cookies["consult_csrf"] == nil || c.cookies["consult_csrf"].Value != token {
		t.Fatalf("token %q key %q cookies %v", token, key, c.cookies)
	}
	if r2 := c.get("/d/plan/comment"); field(t, idemRe, r2.body) == key {
		t.Error("two forms got the same idempotency key")
	}

	// Too long: the form comes back with everything as typed and the count.
	long := strings.Repeat("建议", 2500) + "。"
	form := url.Values{"_csrf": {token}, "idempotency_key": {key}, "section": {"p2-i1-n1"}, "body": {long},
		"name": {"张三丰"}, "contact": {"13800000000"}, "category": {"expert"}, "publish_name": {"1"}}
	r = c.do(http.MethodPost, "/d/plan/comment", form)
	r.must(t, http.StatusUnprocessableEntity, "意见未能提交，请修改以下问题", `href="#body"`,
		"最多 5000 字，当前 5001 字，请删减 1 字。", `id="body-error"`,
		`aria-describedby="body-hint body-count body-error" aria-invalid="true"`,
		`value="张三丰"`, `value="13800000000"`, `<option value="expert" selected>`, `name="publish_name" value="1" aria-describedby="publish-hint" checked`,
		`name="section" value="p2-i1-n1"`, "1. 深化行政审批制度改革", "已输入 5001 / 5000 字")
	checkPage(t, r, langZH)
	if got := textarea(t, r.body); got != long {
		t.Fatalf("textarea holds %d characters, want the %d typed", utf8.RuneCountInString(got), utf8.RuneCountInString(long))
	}
	if field(t, idemRe, r.body) != key {
		t.Fatal("the idempotency key changed on a re-render")
	}

	// Leading blank lines survive a re-render (the parser eats one newline after <textarea>).
	r = c.do(http.MethodPost, "/d/plan/comment", url.Values{"_csrf": {token}, "idempotency_key": {key}, "body": {"\n\n意见"}, "category": {"alien"}})
	r.must(t, http.StatusUnprocessableEntity)
	if got := textarea(t, r.body); got != "\n\n意见" {
		t.Errorf("textarea value %q", got)
	}

	// Empty body and a bad category, in English.
	r = c.do(http.MethodPost, "/d/plan/comment?lang=en", url.Values{"_csrf": {token}, "idempotency_key": {key}, "body": {" \n "}, "category": {"alien"}})
	r.must(t, http.StatusUnprocessableEntity, "Please write your comment.", "Please choose one from the list.", `href="#category"`)
	checkPage(t, r, langEN)
	c.get("/?lang=zh")

	// Fixed: a 303 to the receipt, with the first receipt again on a double submit.
	form.Set("body", "建议明确权责清单的公布渠道和更新时限。\n第二行。")
	r = c.do(http.MethodPost, "/d/plan/comment", form)
	if r.Code != http.StatusSeeOther {
		t.Fatalf("status %d:\n%s", r.Code, r.body)
	}
	loc := r.Header().Get("Location")
	code, ok := strings.CutPrefix(loc, "/receipts/")
	if !ok || !strings.HasSuffix(code, "?new=1") {
		t.Fatalf("Location %q", loc)
	}
	code = strings.TrimSuffix(code, "?new=1")
	if !strings.HasPrefix(code, fmt.Sprint(d.Ref)+"-") {
		t.Fatalf("code %q", code)
	}
	r2 := c.do(http.MethodPost, "/d/plan/comment", form)
	if r2.Code != http.StatusSeeOther || r2.Header().Get("Location") != loc {
		t.Fatalf("double submit: %d %q, want %q", r2.Code, r2.Header().Get("Location"), loc)
	}
	if n, _ := e.cs.Counts(context.Background(), d.ID); n.Submitted != 1 {
		t.Fatalf("counts %+v", n)
	}

	// Back and changed: the same key with other text is a conflict, with a new key.
	form.Set("body", "另一条意见。")
	r = c.do(http.MethodPost, "/d/plan/comment", form)
	r.must(t, http.StatusConflict, "已经以不同的内容提交过", "另一条意见。")
	if field(t, idemRe, r.body) == key {
		t.Error("the key was not renewed")
	}

	r = c.get(loc)
	r.must(t, http.StatusOK, "您的意见已提交成功", code, "意见回执", planTitle, "1. 深化行政审批制度改革", "已接收，正在登记", "北京时间", "SHA-256")
	checkPage(t, r, langZH)
	r = c.get("/receipts/" + strings.ToLower(code))
	r.must(t, http.StatusOK, code)
	if strings.Contains(r.body, "已提交成功") {
		t.Error("banner without ?new=1")
	}
	// Another browser sees the receipt without the digest it was never given.
	other := e.client()
	r = other.get("/receipts/" + code)
	r.must(t, http.StatusOK, code, "已接收，正在登记")

	r = other.get("/receipts?code=" + url.QueryEscape(" "+strings.ToLower(code)+" "))
	r.must(t, http.StatusOK, "查询结果", code, "已接收，正在登记", `href="/receipts/`+code+`"`)
	checkPage(t, r, langZH)

	// No page shows the commenter's name or contact.
	for _, p := range []string{"/", "/d/plan", loc, "/receipts?code=" + code} {
		r := c.get(p)
		if strings.Contains(r.body, "张三丰") || strings.Contains(r.body, "13800000000") {
			t.Errorf("%s shows personal data", p)
		}
	}
	r = c.get("/")
	r.must(t, http.StatusOK, "1 条")
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	c := e.client()
	r := c.get("/d/plan/comment")
	token := field(t, csrfRe, r.body)
	ok := url.Values{"_csrf": {token}, "body": {"意见。"}}

	for name, tc := range map[string]struct {
		form   url.Values
		cookie bool
		fetch  string
		want   int
	}{
		"no token":            {url.Values{"body": {"意见。"}}, true, "", http.StatusForbidden},
		"wrong token":         {url.Values{"_csrf": {"x" + token}, "body": {"意见。"}}, true, "", http.StatusForbidden},
		"no cookie":           {ok, false, "", http.StatusForbidden},
		"cross-site":          {ok, true, "cross-site", http.StatusForbidden},
		"token and cookie":    {ok, true, "", http.StatusSeeOther},
		"same-origin browser": {url.Values{"body": {"意见。"}}, false, "same-origin", http.StatusSeeOther},
	} {
		t.Run(name, func(t *testing.T) {
			cc := e.client()
			if tc.cookie {
				cc.cookies["consult_csrf"] = c.cookies["consult_csrf"]
			}
			if tc.fetch != "" {
				cc.header.Set("Sec-Fetch-Site", tc.fetch)
			}
			r := cc.do(http.MethodPost, "/d/plan/comment", tc.form)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d:\n%s", r.Code, tc.want, r.body)
			}
			if tc.want == http.StatusForbidden {
				r.must(t, tc.want, "表单已过期", `href="/d/plan/comment"`, "返回征求意见列表")
				checkPage(t, r, langZH)
			}
		})
	}
}

func TestWindowErrorsKeepText(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	now := time.Now()
	e.draft(drafts.Draft{ID: "closed", OpensAt: now.Add(-48 * time.Hour), ClosesAt: now.Add(-time.Hour)})
	e.draft(drafts.Draft{ID: "later", OpensAt: now.Add(48 * time.Hour), ClosesAt: now.Add(800 * time.Hour)})
	c := e.client()
	token := field(t, csrfRe, c.get("/d/plan/comment").body)

	r := c.do(http.MethodPost, "/d/closed/comment", url.Values{"_csrf": {token}, "body": {"晚到的意见，请保留。"}, "section": {"p1"}})
	r.must(t, http.StatusConflict, "本次征求意见已经结束", "晚到的意见，请保留。", "一、总体要求")
	if strings.Contains(r.body, `type="submit"`) {
		t.Error("closed: the form can still be submitted")
	}
	r = c.do(http.MethodPost, "/d/later/comment", url.Values{"_csrf": {token}, "body": {"早到的意见。"}})
	r.must(t, http.StatusConflict, "本次征求意见将于", "早到的意见。")
	checkPage(t, r, langZH)
}

// TestStorageDownKeepsText: with Redis gone the form comes back (503) with what
// the person typed and a notice, never a receipt and never an error page.
func TestStorageDownKeepsText(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	c := e.client()
	form := c.get("/d/plan/comment?section=p1").body
	token := field(t, csrfRe, form)
	e.redis.Proc.Kill()
	r := c.do(http.MethodPost, "/d/plan/comment", url.Values{"_csrf": {token}, "body": {"停机时写下的意见，请勿丢失。"}, "section": {"p1"}, "name": {"王五"}})
	r.must(t, http.StatusServiceUnavailable, "系统暂时无法保存意见", "停机时写下的意见，请勿丢失。", "王五", `type="submit"`)
	checkPage(t, r, langZH)
}

func TestErrorPages(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	c := e.client()
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/d/no-such-draft", 404, "未找到该草案"},
		{"/d/no-such-draft/comment", 404, "未找到该草案"},
		{"/d/plan/comment?section=nope", 404, "页面不存在"},
		{"/receipts/1-AAAAA-AAAAA", 404, "未找到该回执"},
		{"/receipts/garbage", 404, "未找到该回执"},
		{"/nowhere", 404, "页面不存在"},
		{"/static/app.0000000000.css", 404, "页面不存在"},
	} {
		r := c.get(tc.path)
		r.must(t, tc.status, tc.want, "返回征求意见列表", `class="site-header"`)
		checkPage(t, r, langZH)
	}
	c.header.Set("Accept-Language", "en")
	r := c.get("/d/no-such-draft")
	r.must(t, 404, "Draft not found")
	checkPage(t, r, langEN)

	// Too large for the body limit: the page says so and links back to the form.
	token := field(t, csrfRe, c.get("/d/plan/comment").body)
	r = c.do(http.MethodPost, "/d/plan/comment", url.Values{"_csrf": {token}, "body": {strings.Repeat("长", 30000)}})
	r.must(t, http.StatusRequestEntityTooLarge, "Too much to receive", "5000")
	checkPage(t, r, langEN)
}

func TestLookupPage(t *testing.T) {
	e := newEnv(t, nil)
	openDraft(e, "plan")
	c := e.client()
	r := c.get("/receipts")
	r.must(t, http.StatusOK, `<label for="code">`, `name="code" value=""`)
	checkPage(t, r, langZH)
	if strings.Contains(r.body, "没有找到") {
		t.Error("not-found message without a code")
	}
	r = c.get("/receipts?code=" + url.QueryEscape("1-zzzzz-<b>"))
	r.must(t, http.StatusNotFound, "没有找到回执编号“1-zzzzz-&lt;b&gt;”", `value="1-zzzzz-&lt;b&gt;"`, `aria-invalid="true"`)
	checkPage(t, r, langZH)
	r = c.get("/receipts?code=" + strings.Repeat("9", 500))
	if n := strings.Count(r.body, "9"); n > 200 {
		t.Errorf("a long code is echoed whole (%d nines)", n)
	}
}

func TestAssets(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	r := c.get("/")
	urls := assetRe.FindAllString(r.body, -1)
	sort.Strings(urls)
	seen := map[string]string{}
	for _, u := range urls {
		seen[u] = ""
	}
	if len(seen) != 3 {
		t.Fatalf("assets on the page: %v", urls)
	}
	types := map[string]string{"css": "text/css", "js": "javascript", "svg": "image/svg+xml"}
	for u := range seen {
		r := c.get(u)
		r.must(t, http.StatusOK)
		if got := r.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", u, got)
		}
		if ct := r.Header().Get("Content-Type"); !strings.Contains(ct, types[u[strings.LastIndex(u, ".")+1:]]) {
			t.Errorf("%s: Content-Type %q", u, ct)
		}
		if r.Body.Len() == 0 {
			t.Errorf("%s: empty", u)
		}
	}
	// Nothing the page loads comes from another host, and the CSS asks for no fonts.
	for u := range seen {
		body := c.get(u).body
		if strings.Contains(body, "@font-face") || strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "url(") {
			if !strings.HasSuffix(u, ".svg") {
				t.Errorf("%s loads from elsewhere", u)
			}
		}
	}
	if !bytes.Contains([]byte(r.Header().Get("Content-Security-Policy")), []byte("script-src 'self'")) {
		t.Errorf("CSP %q", r.Header().Get("Content-Security-Policy"))
	}
}

// FuzzCommentForm posts whatever a form can carry. The page never fails, and what
// was typed can never break out of the textarea or an attribute.
func FuzzCommentForm(f *testing.F) {
	rdb := redistest.Start(f).Client(f)
	ds := store.NewDrafts(rdb, nil)
	cs := store.NewComments(rdb, ds, store.IntakeConfig{})
	h, err := New(Config{Drafts: ds, Comments: cs, Logger: (&logSink{}).logger()})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	if _, err := ds.Import(context.Background(), record.AdminToken, drafts.Draft{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther,
		Text: planText, OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(24 * time.Hour), DigestRecipients: []string{"a@example.gov.cn"}}); err != nil {
		f.Fatal(err)
	}
	f.Add("意见", "张三", "13800000000", "individual", "p1", "k1", "1")
	f.Add("</textarea><script>alert(1)</script>", `"><b>`, "\x00\r\n", "nope", "nope", "k k", "")
	f.Add(strings.Repeat("长", 5001), strings.Repeat("名", 101), "", "expert", "", "", "on")
	f.Add("\xff\xfe", "\u2028", "\t", "", "p1-i1", strings.Repeat("k", 200), "x")
	f.Fuzz(func(t *testing.T, body, name, contact, category, section, key, publish string) {
		form := url.Values{"body": {body}, "name": {name}, "contact": {contact}, "category": {category},
			"section": {section}, "idempotency_key": {key}, "publish_name": {publish}}
		req := httptest.NewRequest(http.MethodPost, "/d/plan/comment", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		page := rec.Body.String()
		switch rec.Code {
		case http.StatusSeeOther, http.StatusRequestEntityTooLarge:
			return
		case http.StatusUnprocessableEntity, http.StatusConflict:
		default:
			t.Fatalf("status %d:\n%s", rec.Code, page)
		}
		if strings.Count(page, "<textarea") != 1 || strings.Count(page, "</textarea>") != 1 || strings.Contains(page, "<script>") ||
			strings.Contains(page, "<b>") || strings.Contains(page, "⟦") {
			t.Fatalf("input escaped its place:\n%s", page)
		}
	})
}
