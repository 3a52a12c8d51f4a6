package handlers

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/internal/smtptest"
	"consult/notify"
	"consult/record"
	"consult/store"
)

// digestClock is a time the test moves by hand (link expiry).
type digestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *digestClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *digestClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer collects log lines from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

var digestLink = regexp.MustCompile(`https?://[^\s"<>]+/digests/[^\s"<>]+`)

// TestDigestDownload runs the whole path of a digest too large to e-mail: the
// real store and Redis, the scheduler sending the summary through a real SMTP
// server, and the links in the e-mail, as a mail client shows them, fetched
// from this package's routes.
func TestDigestDownload(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	ds := store.NewDrafts(rdb, nil)
	cs := store.NewComments(rdb, ds, store.IntakeConfig{})
	now := time.Now()
	d, err := ds.Create(ctx, record.System, drafts.Draft{
		ID: "d-download", Title: "测试办法（征求意见稿）", Bureau: "司法局", Kind: drafts.KindRule,
		Text:     "第一条 为了规范本市公共服务，制定本办法。\n第二条 本办法适用于本市行政区域。\n",
		ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"bureau@example.gov.cn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for i := range 300 {
		sub := comments.Submission{DraftID: d.ID, Body: fmt.Sprintf("第%d条意见：建议进一步明确适用范围。%s", i, strings.Repeat("具体建议如下。", i%5)),
			Name: fmt.Sprintf("评论人%d", i), Contact: fmt.Sprintf("1380000%04d", i), Category: comments.CategoryIndividual}
		if i%2 == 1 {
			sub.Section = d.Sections[i%len(d.Sections)].Anchor
		}
		if i%7 == 0 {
			sub.Body = "=1+1 " + sub.Body
		}
		r, err := cs.Submit(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, r.Code)
	}
	// Process them, as consultd's workers do.
	wctx, stopWorker := context.WithCancel(ctx)
	w := store.NewWorker(rdb, store.WorkerConfig{Consumer: "test", Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, err := cs.Counts(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n.Settled() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("comments not processed: %+v", n)
		}
	}
	stopWorker()
	<-workerDone

	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := &digestClock{t: now}
	mailer := smtptest.Start(t, smtptest.Options{})
	m, err := notify.NewSMTPMailer(notify.SMTPConfig{URL: "smtp://" + mailer.Addr})
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler's links point at this server.
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	key, err := notify.LoadLinkKey(ctx, rdb, "")
	if err != nil {
		t.Fatal(err)
	}
	sched, err := notify.NewScheduler(rdb, ds, cs, m, notify.Config{
		From: "意见征集系统 <noreply@consult.example.gov.cn>", BaseURL: "http://" + srv.Listener.Addr().String(), Logger: log,
		Paths: notify.Paths{Draft: DraftPath, File: DigestFilePath},
		Now:   clock.Now, Interval: 5 * time.Millisecond, MaxBytes: 60_000, LinkKey: key, SpillDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A request deadline far shorter than rebuilding the file: downloads have a
	// bound of their own.
	e, err := New(Config{Drafts: ds, Comments: cs, DigestFiles: sched, Ready: alwaysReady{}, Logger: log, RequestTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = e
	srv.Start()
	if _, err := sched.RequestInterim(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sched.Run(runCtx) }()
	msgs := mailer.WaitFor(t, 1, 20*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(msgs[0].Data) > 60_000 {
		t.Errorf("an e-mail of %d bytes over the limit", len(msgs[0].Data))
	}
	p := msgs[0].Parse(t)
	if len(p.Attachments) != 0 || !strings.Contains(p.Text, "NOT in this e-mail") || !strings.Contains(p.Text, "The links work until") {
		t.Fatalf("not a summary e-mail:\n%s", p.Text)
	}
	links := map[string]string{}
	for _, l := range digestLink.FindAllString(p.Text, -1) {
		u, err := url.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		links[u.Path[strings.LastIndexByte(u.Path, '/')+1:]] = l
	}
	if len(links) != 3 {
		t.Fatalf("links in the summary: %v", links)
	}

	get := func(link string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, link, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}

	res, body := get(links[notify.FileCSV])
	if res.StatusCode != 200 {
		t.Fatalf("CSV link: %d\n%s", res.StatusCode, body)
	}
	disp, params, _ := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
	if ct := res.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" || disp != "attachment" || !strings.HasSuffix(params["filename"], ".csv") {
		t.Errorf("served as %q, %q %v", ct, disp, params)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "private, no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		t.Fatal("CSV without its BOM")
	}
	rows, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, row := range rows[1:] {
		seen[row[0]]++
		if strings.HasPrefix(row[8], "=") {
			t.Errorf("formula not defused: %q", row[8])
		}
	}
	for _, c := range codes {
		if seen[c] != 1 {
			t.Errorf("receipt %s appears %d times in the CSV", c, seen[c])
		}
	}
	if len(rows)-1 != len(codes) {
		t.Errorf("%d rows for %d receipts", len(rows)-1, len(codes))
	}
	for file, ctype := range map[string]string{notify.FileHTML: "text/html; charset=utf-8", notify.FileText: "text/plain; charset=utf-8"} {
		res, b := get(links[file])
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || !bytes.Contains(b, []byte(codes[len(codes)-1])) {
			t.Errorf("%s link: %d %q, %d bytes", file, res.StatusCode, res.Header.Get("Content-Type"), len(b))
		}
	}
	// The same bytes again, and a cut-off download resumes where it stopped.
	if res, again := get(links[notify.FileCSV]); res.StatusCode != 200 || !bytes.Equal(again, body) {
		t.Error("the CSV differs on a second download")
	}
	if res, part := get(links[notify.FileCSV], "Range", "bytes=1000-1999"); res.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[1000:2000]) {
		t.Errorf("Range: %d, %d bytes", res.StatusCode, len(part))
	}

	u, _ := url.Parse(links[notify.FileCSV])
	q := u.Query()
	sig := q.Get("sig")
	tampered := func(mod func(u *url.URL, q url.Values)) string {
		v, _ := url.Parse(links[notify.FileCSV])
		vq := v.Query()
		mod(v, vq)
		v.RawQuery = vq.Encode()
		return v.String()
	}
	for name, link := range map[string]string{
		"other draft":  tampered(func(u *url.URL, _ url.Values) { u.Path = strings.Replace(u.Path, d.ID, "d-other", 1) }),
		"other file":   tampered(func(u *url.URL, _ url.Values) { u.Path = strings.Replace(u.Path, notify.FileCSV, notify.FileHTML, 1) }),
		"later expiry": tampered(func(_ *url.URL, q url.Values) { q.Set("exp", "99999999999") }),
		"altered sig":  tampered(func(_ *url.URL, q url.Values) { q.Set("sig", "A"+sig[1:]) }),
		"no sig":       tampered(func(_ *url.URL, q url.Values) { q.Del("sig") }),
		"final instead": tampered(func(u *url.URL, _ url.Values) {
			u.Path = regexp.MustCompile(`interim-\d+`).ReplaceAllString(u.Path, "final")
		}),
	} {
		res, b := get(link)
		if res.StatusCode != http.StatusNotFound || bytes.Contains(b, []byte(codes[0])) {
			t.Errorf("%s: %d, want 404", name, res.StatusCode)
		}
		if res.Header.Get("Content-Disposition") != "" {
			t.Errorf("%s: served a file", name)
		}
	}
	clock.Add(30*24*time.Hour + time.Minute)
	if res, _ := get(links[notify.FileCSV]); res.StatusCode != http.StatusNotFound {
		t.Errorf("expired link: %d, want 404", res.StatusCode)
	}
	if l := logs.String(); strings.Contains(l, sig) || strings.Contains(l, "sig=") || strings.Contains(l, "exp=") {
		t.Errorf("a link reached the log:\n%s", l)
	}
	if !strings.Contains(logs.String(), "=/digests/:draft/:job/:file ") {
		t.Errorf("downloads not logged by their route:\n%s", logs.String())
	}
}
