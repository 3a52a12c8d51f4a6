package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/record"
	"consult/store"
)

const chromiumPath = "/usr/bin/chromium"

// screenshotDir is artifacts/screenshots at the repository root (gitignored).
var screenshotDir = filepath.Join("..", "artifacts", "screenshots")

// TestBrowserCitizenFlow drives a real Chromium through what a citizen does: the
// list, a draft, a comment on one section that is too long and then fixed, the
// receipt, and the lookup of its code, on a phone and a desktop, in both
// languages. It saves a full-page screenshot of every step.
func TestBrowserCitizenFlow(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s (%v): run `make deps-test` to install it", chromiumPath, err)
	}
	rdb := redistest.Start(t).Client(t)
	cfg, ds, _ := storeConfig(rdb, nil, &logSink{})
	as := cfg.Accounts.(*store.Accounts)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)

	w := store.NewWorker(rdb, store.WorkerConfig{Consumer: "browser"})
	wctx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	t.Cleanup(func() {
		stopWorker()
		if err := <-workerDone; err != nil && wctx.Err() == nil {
			t.Errorf("worker: %v", err)
		}
	})

	ctx := context.Background()
	now := time.Now()
	for _, d := range []drafts.Draft{
		{ID: "plan", Title: planTitle, Bureau: planBureau, Kind: drafts.KindOther, Summary: planSummary, Text: planText,
			OpensAt: now.Add(-24 * time.Hour), ClosesAt: now.Add(9*24*time.Hour + 5*time.Hour)},
		{ID: "parking", Title: "某市公共停车场管理办法（征求意见稿）", Bureau: "某市交通运输局", Kind: drafts.KindRule,
			Text:    "第一条 为了加强公共停车场管理，制定本办法。\n第二条 本办法适用于本市行政区域内的公共停车场。\n",
			OpensAt: now.Add(3*24*time.Hour + 4*time.Hour + 30*time.Minute), ClosesAt: now.Add(40 * 24 * time.Hour)},
		{ID: "decision", Title: "某县重大行政决策程序规定（征求意见稿）", Bureau: "某县人民政府办公室", Kind: drafts.KindMajorDecision,
			Text: "第一条 为了规范重大行政决策程序，制定本规定。\n", OpensAt: now.Add(-60 * 24 * time.Hour), ClosesAt: now.Add(-20 * 24 * time.Hour)},
	} {
		d.DigestRecipients = []string{"bureau@example.gov.cn"}
		if _, err := ds.Import(ctx, record.AdminToken, d); err != nil {
			t.Fatal(err)
		}
	}
	// One draft per flow that asks for a proof of work (small, so that the test
	// is quick; the script is the same at any size) and takes one comment an
	// hour from a client: every flow comes from 127.0.0.1.
	for _, l := range []lang{langZH, langEN} {
		for _, dev := range []device{phone, desktop} {
			id := powDraft(l, dev)
			if _, err := ds.Import(ctx, record.AdminToken, drafts.Draft{ID: id, Title: "某市城市养犬管理规定（征求意见稿）", Bureau: "某市公安局",
				Kind: drafts.KindRule, Text: "第一条 为了规范养犬行为，制定本规定。\n第二条 本规定适用于本市城市建成区。\n",
				OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(20 * 24 * time.Hour), DigestRecipients: []string{"gaj@example.gov.cn"}}); err != nil {
				t.Fatal(err)
			}
			if err := ds.SetLimits(ctx, record.AdminToken, id, drafts.Limits{PoWBits: 12, SubmitsPerHour: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser, with no timeout
		t.Fatalf("start Chromium: %v (run `make deps-test`)", err)
	}

	for _, l := range []lang{langZH, langEN} {
		for _, dev := range []device{phone, desktop} {
			t.Run(l.short()+"-"+dev.name, func(t *testing.T) {
				citizenFlow(t, browserCtx, ts.URL, l, dev)
			})
		}
	}

	// Staff: one bureau user per flow, since a flow changes its password.
	b, err := as.EnsureBureau(ctx, "console:test", planBureau)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []lang{langZH, langEN} {
		for _, dev := range []device{phone, desktop} {
			name := l.short() + "-" + dev.name
			if _, err := as.CreateUser(ctx, "console:test", accounts.User{Name: name, Role: accounts.RoleBureau, Bureaus: []string{b.ID}}, staffPassword); err != nil {
				t.Fatal(err)
			}
			t.Run("staff-"+name, func(t *testing.T) {
				staffFlow(t, browserCtx, ts.URL, l, dev, name)
			})
		}
	}
}

func validCode(code string) bool {
	_, _, ok := comments.ParseCode(code)
	return ok
}

func powDraft(l lang, dev device) string { return "pow-" + l.short() + "-" + dev.name }

// jsString quotes s for a script.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type device struct {
	name          string
	width, height int64
	mobile        bool
}

var (
	phone   = device{"phone", 390, 844, true}
	desktop = device{"desktop", 1280, 900, false}
)

func citizenFlow(t *testing.T, browserCtx context.Context, base string, l lang, dev device) {
	tab, cancelTab := chromedp.NewContext(browserCtx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	problems := watchConsole(tab)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	msg := messages[l]

	step := 0
	shoot := func(name string) {
		t.Helper()
		step++
		// Nothing may be wider than the screen: a phone would scroll sideways.
		widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if widths[0] > widths[1] {
			t.Errorf("%s: page is %dpx wide in a %dpx window", name, widths[0], widths[1])
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(screenshotDir, fmt.Sprintf("%s-%s-%02d-%s.png", l.short(), dev.name, step, name))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// follow clicks and waits for the page it leads to, and checks its status.
	follow := func(sel string, status int64) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
		if resp.Status != status {
			t.Fatalf("click %s: status %d, want %d", sel, resp.Status, status)
		}
	}

	if dev.mobile {
		do("emulate", chromedp.EmulateViewport(dev.width, dev.height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	} else {
		do("emulate", chromedp.EmulateViewport(dev.width, dev.height))
	}

	// 1. The list, in the chosen language (then remembered by the cookie).
	do("open list", chromedp.Navigate(base+"/?lang="+l.short()), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := text("h1"); got != msg["list.title"] {
		t.Fatalf("list h1 %q", got)
	}
	if lng, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); lng != string(l) {
		t.Errorf("html lang %q", lng)
	}
	for _, want := range []string{msg["list.open"], msg["list.upcoming"], msg["list.closed"], planTitle, msg["kind.other"], msg["tz.beijing"]} {
		if !strings.Contains(text("main"), want) {
			t.Errorf("list lacks %q", want)
		}
	}
	shoot("list")

	// 2. The draft.
	follow(`a[href="/d/plan"]`, http.StatusOK)
	do("draft", chromedp.WaitVisible(chromedp.ID("p2-i1-n1")))
	if got := text("h1"); got != planTitle {
		t.Fatalf("draft h1 %q", got)
	}
	if !strings.Contains(text("#p1-i2"), "政府行为全面纳入法治轨道，\n职责明确") {
		t.Errorf("line break in a section not shown: %q", text("#p1-i2"))
	}
	shoot("draft")

	// 3. Comment on one section.
	follow(`a[href="/d/plan/comment?section=p2-i1-n1"]`, http.StatusOK)
	do("form", chromedp.WaitVisible(chromedp.ID("body")))
	if got := text("#target blockquote"); !strings.Contains(got, "1. 深化行政审批制度改革") {
		t.Fatalf("section shown: %q", got)
	}
	if checked, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('publish_name').checked`)); checked {
		t.Error("consent box is ticked by default")
	}
	shoot("form")

	// 4. Too long: the JS counter says so, and so does the server.
	long := strings.Repeat("建议进一步明确各部门权责清单的公布渠道和更新时限。", 200) // 5000 characters
	do("type too long", chromedp.SetValue(chromedp.ID("body"), long[:len(long)-len("。")]), chromedp.SendKeys(chromedp.ID("body"), "。！"))
	if got := text("#body-count"); !strings.Contains(got, "5001") {
		t.Errorf("counter says %q", got)
	}
	do("fill", chromedp.SendKeys(chromedp.ID("name"), "张三"), chromedp.SetValue(chromedp.ID("category"), "expert"))
	follow(`#comment-form button[type="submit"]`, http.StatusUnprocessableEntity)
	do("error", chromedp.WaitVisible(chromedp.ID("error-summary")))
	if got := text("#body-error"); !strings.Contains(got, "5001") {
		t.Errorf("error says %q", got)
	}
	kept, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("body")))
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(kept); n != 5001 {
		t.Errorf("textarea holds %d characters after the error, want 5001", n)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("category"))); v != "expert" {
		t.Errorf("category %q after the error", v)
	}
	shoot("form-error")

	// 5. Shortened: the receipt.
	do("shorten", chromedp.SetValue(chromedp.ID("body"), "建议进一步明确各部门权责清单的公布渠道和更新时限，\n并在政府网站集中公开。"))
	follow(`#comment-form button[type="submit"]`, http.StatusOK)
	do("receipt", chromedp.WaitVisible(chromedp.ID("receipt-code")))
	code := strings.TrimSpace(text("#receipt-code"))
	if _, _, ok := comments.ParseCode(code); !ok {
		t.Fatalf("receipt code %q", code)
	}
	if got := text("main"); !strings.Contains(got, msg["receipt.new"]) || !strings.Contains(got, planTitle) || strings.Contains(got, "张三") {
		t.Errorf("receipt page: %q", got)
	}
	shoot("receipt")

	// 6. Look the code up, as someone would who kept it.
	follow(`.site-nav a[href="/receipts"]`, http.StatusOK)
	do("lookup", chromedp.WaitVisible(chromedp.ID("code")), chromedp.SendKeys(chromedp.ID("code"), strings.ToLower(code)))
	follow(`form.lookup button[type="submit"]`, http.StatusOK)
	accepted := msg["receipt.status.accepted"]
	for i := 0; ; i++ {
		do("result", chromedp.WaitVisible(chromedp.ID("lookup-status")))
		if got := text("#lookup-status"); got == accepted {
			break
		} else if i == 50 {
			t.Fatalf("status %q, want %q", got, accepted)
		}
		time.Sleep(100 * time.Millisecond)
		do("reload", chromedp.Reload())
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("code"))); v != strings.ToLower(code) {
		t.Errorf("typed code not kept: %q", v)
	}
	shoot("lookup")

	// 7. A code that does not exist, and a page that does not.
	do("not found", chromedp.SetValue(chromedp.ID("code"), "1-ABCDE-FGHJK"))
	follow(`form.lookup button[type="submit"]`, http.StatusNotFound)
	if got := text("#code-error"); !strings.Contains(got, "1-ABCDE-FGHJK") {
		t.Errorf("not found message %q", got)
	}
	shoot("lookup-not-found")
	if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/d/no-such-draft")); err != nil {
		t.Fatal(err)
	}
	if got := text("h1"); got != msg["error.draft_not_found"] {
		t.Errorf("404 h1 %q", got)
	}
	shoot("not-found")

	// 8. A draft that asks for a proof of work: the page's own script solves it
	// while the person types, and the comment gets its receipt.
	pow := powDraft(l, dev)
	if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/d/"+pow+"/comment")); err != nil {
		t.Fatal(err)
	}
	do("pow form", chromedp.WaitVisible(chromedp.ID("body")),
		chromedp.SendKeys(chromedp.ID("body"), "建议明确犬只登记的办理渠道，并允许网上办理。"))
	do("pow solved", chromedp.Poll[chromedp.Void](`document.getElementById('pow-status').textContent === `+jsString(msg["form.pow_done"])))
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="pow_nonce"]`))); v == "" {
		t.Fatal("the script filled no nonce")
	}
	if visible, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){var r=document.getElementById('website').getBoundingClientRect();return r.right>0&&r.bottom>0&&r.width>1})()`)); visible {
		t.Error("the honeypot field is on screen")
	}
	shoot("pow-form")
	follow(`#comment-form button[type="submit"]`, http.StatusOK)
	do("pow receipt", chromedp.WaitVisible(chromedp.ID("receipt-code")))
	if code := strings.TrimSpace(text("#receipt-code")); !validCode(code) {
		t.Fatalf("receipt code %q", code)
	}

	// 9. A second comment within the hour on that draft: 429, with the text kept.
	if _, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/d/"+pow+"/comment")); err != nil {
		t.Fatal(err)
	}
	second := "第二条建议：公共区域遛犬应当束犬链。"
	do("second", chromedp.WaitVisible(chromedp.ID("body")), chromedp.SendKeys(chromedp.ID("body"), second),
		chromedp.Poll[chromedp.Void](`document.getElementById('pow-status').textContent === `+jsString(msg["form.pow_done"])))
	follow(`#comment-form button[type="submit"]`, http.StatusTooManyRequests)
	do("limited", chromedp.WaitVisible(chromedp.CSS(".notice.warn")))
	if kept, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("body"))); kept != second {
		t.Errorf("text after the 429: %q", kept)
	}
	if got := text(".notice.warn"); !strings.Contains(got, strings.SplitN(msg["form.rate_limited"], "%s", 2)[0]) {
		t.Errorf("429 notice %q", got)
	}
	shoot("rate-limited")

	cancelTab()
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

// watchConsole collects what the browser reports as wrong on the pages: script
// errors and blocked content (a CSP violation is a "security" entry). Failed
// responses are left out: the flow asks for 404 and 422 on purpose. The returned
// func waits for the tab to end and returns the problems.
func watchConsole(tab context.Context) func() []string {
	var (
		mu       sync.Mutex
		problems []string
		done     = make(chan struct{})
	)
	msgs := chromedp.Console(tab)
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Source == "network" || (m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Source != "security") {
				continue
			}
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s %s %s: %s", m.Type, m.Source, m.URL, m.Text))
			mu.Unlock()
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return problems
	}
}

// staffFlow drives a member of staff through the sign-in page (a wrong
// password first), the account page, a token made (shown once) and revoked, a
// password change that fails and then succeeds, and signing out.
func staffFlow(t *testing.T, browserCtx context.Context, base string, l lang, dev device, name string) {
	tab, cancelTab := chromedp.NewContext(browserCtx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	problems := watchConsole(tab)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	msg := messages[l]
	step := 0
	shoot := func(what string) {
		t.Helper()
		step++
		widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if widths[0] > widths[1] {
			t.Errorf("%s: page is %dpx wide in a %dpx window", what, widths[0], widths[1])
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(screenshotDir, fmt.Sprintf("%s-%s-staff-%02d-%s.png", l.short(), dev.name, step, what))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	follow := func(sel string, status int64) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
		if resp.Status != status {
			t.Fatalf("click %s: status %d, want %d", sel, resp.Status, status)
		}
	}
	if dev.mobile {
		do("emulate", chromedp.EmulateViewport(dev.width, dev.height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	} else {
		do("emulate", chromedp.EmulateViewport(dev.width, dev.height))
	}

	// 1. The account page asks to sign in first; a wrong password is refused.
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+"/account?lang="+l.short()))
	if err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("account without a session: %v %v", resp, err)
	}
	do("login", chromedp.WaitVisible(chromedp.ID("password")), chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), "not my password"))
	follow(`#login-form button[type="submit"]`, http.StatusUnauthorized)
	if got := text("#login-notice"); got != msg["login.bad"] {
		t.Errorf("wrong password: %q", got)
	}
	shoot("login-error")

	// 2. The right one: the account page.
	do("login again", chromedp.SendKeys(chromedp.ID("password"), staffPassword)) // the form never gives a password back
	follow(`#login-form button[type="submit"]`, http.StatusOK)
	do("account", chromedp.WaitVisible(chromedp.ID("account-name")))
	if got := text("#account-name"); got != name {
		t.Fatalf("account of %q", got)
	}
	if !strings.Contains(text("main"), planBureau) || !strings.Contains(text(".site-nav"), msg["nav.logout"]) {
		t.Errorf("account page: %q", text("main"))
	}
	shoot("account")

	// 3. A token, shown once, then revoked.
	do("token", chromedp.SendKeys(chromedp.ID("label"), "意见导出脚本"), chromedp.SetValue(chromedp.ID("scope"), "read"))
	follow(`#token-form button[type="submit"]`, http.StatusCreated)
	do("new token", chromedp.WaitVisible(chromedp.ID("new-token-value")))
	tok := strings.TrimSpace(text("#new-token-value"))
	if !strings.HasPrefix(tok, "ct_") || !strings.Contains(text("#token-list"), msg["scope.read"]) {
		t.Fatalf("new token %q, list %q", tok, text("#token-list"))
	}
	shoot("token-new")
	follow(`#token-list .revoke button`, http.StatusOK)
	do("revoked", chromedp.WaitVisible(chromedp.ID("account-notice")))
	if got := text("#account-notice"); got != msg["account.token_revoked"] {
		t.Errorf("after revoking: %q", got)
	}
	if strings.Contains(text("main"), tok) {
		t.Error("the token is shown again")
	}

	// 4. The password: two that differ come back with the message beside them.
	const newPassword = "a new password for the test"
	do("password", chromedp.SendKeys(chromedp.ID("current"), staffPassword), chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), newPassword+"!"))
	follow(`#password-form button[type="submit"]`, http.StatusUnprocessableEntity)
	if got := text("#confirm-error"); !strings.Contains(got, msg["err.password.confirm"]) {
		t.Errorf("confirm error %q", got)
	}
	do("scroll", chromedp.ScrollIntoView(chromedp.ID("password-form")))
	shoot("password-error")
	do("password again", chromedp.SendKeys(chromedp.ID("current"), staffPassword), chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("confirm"), newPassword))
	follow(`#password-form button[type="submit"]`, http.StatusOK)
	if got := text("#account-notice"); got != msg["account.password_done"] {
		t.Errorf("after the change: %q", got)
	}
	shoot("password-changed")

	// 5. Signing out: the sign-in page says so.
	follow(`.signout button`, http.StatusOK)
	if got := text("#login-notice"); got != msg["login.logged_out"] {
		t.Errorf("after signing out: %q", got)
	}
	shoot("logged-out")

	cancelTab()
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}
