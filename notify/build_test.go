package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/internal/smtptest"
	"consult/record"
	"consult/store"
)

// These tests build digests from the real store on a real Redis: what they
// check (the range a job covers, rebuilding it byte for byte) is the store's
// Each and Head as much as this package.

type storeEnv struct {
	redis *redistest.Server
	rdb   redis.UniversalClient
	ds    *store.Drafts
	cs    *store.Comments
	smtp  *smtptest.Server
	clock *clock
	logs  *syncBuffer
	spill string
}

func newStoreEnv(t *testing.T) *storeEnv {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ds := store.NewDrafts(rdb, nil)
	return &storeEnv{
		redis: srv, rdb: rdb, ds: ds, cs: store.NewComments(rdb, ds, store.IntakeConfig{}),
		smtp: smtptest.Start(t, smtptest.Options{}), clock: &clock{t: time.Now().UTC().Truncate(time.Millisecond)},
		logs: &syncBuffer{}, spill: t.TempDir(),
	}
}

const storeDraftText = "第一章 总则\n第一条 为了规范本市公共服务，制定本办法。\n第二条 本办法适用于本市行政区域。\n第二章 附则\n第三条 本办法自公布之日起施行。\n"

// openDraft stores a draft whose window is open by Redis's clock for an hour.
func (e *storeEnv) openDraft(t *testing.T, id string) drafts.Draft {
	t.Helper()
	// Opened by the server now (OpensAt left out), closing in an hour.
	d, err := e.ds.Create(context.Background(), record.System, drafts.Draft{
		ID: id, Title: "测试办法（征求意见稿）", Bureau: "司法局", Kind: drafts.KindRule, Text: storeDraftText,
		ClosesAt: time.Now().Add(time.Hour), DigestRecipients: []string{"bureau@example.gov.cn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// submit sends n comments from, in parallel, through the real intake, and
// returns their receipt codes.
func (e *storeEnv) submit(t *testing.T, d drafts.Draft, from, n int) []string {
	t.Helper()
	codes := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := e.cs.Submit(context.Background(), generated(d, from+i))
			if err != nil {
				errs <- err
				return
			}
			codes[i] = r.Code
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return codes
}

// generated is the i-th comment of a generator that covers every section, the
// whole draft, every category, names with and without consent, contacts, and
// bodies a spreadsheet would run.
func generated(d drafts.Draft, i int) comments.Submission {
	sub := comments.Submission{DraftID: d.ID, Category: comments.Categories[i%len(comments.Categories)], PublishName: i%3 == 0}
	if k := i % (len(d.Sections) + 1); k > 0 {
		sub.Section = d.Sections[k-1].Anchor
	}
	if i%4 != 0 {
		sub.Name = fmt.Sprintf("评论人%d", i)
		sub.Contact = fmt.Sprintf("1380000%04d", i%10000)
	}
	sub.Body = fmt.Sprintf("第%d条意见：建议进一步明确适用范围和执行标准，细化各部门职责分工，加强监督检查。%s", i,
		strings.Repeat("具体建议如下，请起草单位研究采纳。", 1+i%7))
	if i%10 == 0 {
		sub.Body = fmt.Sprintf("=HYPERLINK(\"http://evil.example\",\"%d\")", i)
	}
	return sub
}

// settle runs a comment worker until every comment submitted is processed.
func (e *storeEnv) settle(t *testing.T, d drafts.Draft) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := store.NewWorker(e.rdb, store.WorkerConfig{Consumer: "test", Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.cs.Counts(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Settled() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("comments not processed: %+v", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *storeEnv) scheduler(t *testing.T, maxBytes int64) *Scheduler {
	t.Helper()
	m, err := NewSMTPMailer(SMTPConfig{URL: "smtp://" + e.smtp.Addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// A client of its own: a replica shares nothing with another but Redis.
	s, err := NewScheduler(e.redis.Client(t), e.ds, e.cs, m, Config{
		From: testFrom, BaseURL: "https://consult.example.gov.cn", Paths: testPaths, Location: shanghai,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Now: e.clock.Now, Interval: 5 * time.Millisecond,
		MaxBytes: maxBytes, LinkKey: testLinkKey, SpillDir: e.spill,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openFile fetches a file as a download link names it.
func openFile(t *testing.T, s *Scheduler, link *url.URL) ([]byte, error) {
	t.Helper()
	seg := strings.Split(strings.TrimPrefix(link.Path, "/digests/"), "/")
	if len(seg) != 3 {
		t.Fatalf("link path %q", link.Path)
	}
	f, name, ctype, err := s.OpenFile(context.Background(), seg[0], seg[1], seg[2], link.Query().Get("exp"), link.Query().Get("sig"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasSuffix(name, seg[2]) || ctype == "" {
		t.Errorf("file %q of type %q", name, ctype)
	}
	return io.ReadAll(f)
}

// jobLinks are the download links of a job as its e-mail would carry them.
func jobLinks(t *testing.T, s *Scheduler, draftID, jobName string) map[string]*url.URL {
	t.Helper()
	r, found, err := s.readRange(context.Background(), job{draftID: draftID, name: jobName})
	if err != nil || !found {
		t.Fatalf("range of %s %s: %v, found %v", draftID, jobName, err, found)
	}
	out := map[string]*url.URL{}
	for _, f := range linkFiles {
		u, err := url.Parse(linkURL(s.cfg.BaseURL, s.cfg.Paths, s.cfg.LinkKey, draftID, jobName, f, r.Expires))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = u
	}
	return out
}

// csvCodes reads the receipt codes of a digest CSV.
func csvCodes(t *testing.T, b []byte) []string {
	t.Helper()
	var codes []string
	for _, row := range readCSV(t, b)[1:] {
		codes = append(codes, row[0])
	}
	return codes
}

// exactlyOnce checks that got holds every code of want once and nothing else.
func exactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range got {
		seen[c]++
	}
	for _, c := range want {
		if seen[c] != 1 {
			t.Errorf("receipt %s appears %d times", c, seen[c])
		}
		delete(seen, c)
	}
	if len(seen) > 0 {
		t.Errorf("%d codes that are no receipt of this draft: %v", len(seen), seen)
	}
}

// TestDigestDeterministic: a job is the same bytes every time it is built, on
// any replica, also after more comments arrive and the clock moves on; the
// e-mail sent whole carries those same bytes.
func TestDigestDeterministic(t *testing.T) {
	e := newStoreEnv(t)
	d := e.openDraft(t, "d-determ")
	codes := e.submit(t, d, 0, 300)
	e.settle(t, d)
	s1, s2 := e.scheduler(t, 0), e.scheduler(t, 0)
	jobName, err := s1.RequestInterim(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	tick(t, s1)
	p := e.smtp.WaitFor(t, 1, 10*time.Second)[0].Parse(t)
	if len(p.Attachments) != 1 {
		t.Fatalf("the digest was not sent whole: %d attachments", len(p.Attachments))
	}
	exactlyOnce(t, csvCodes(t, p.Attachments[0].Data), codes)

	links := jobLinks(t, s1, d.ID, jobName)
	first := map[string][]byte{}
	for f, u := range links {
		b, err := openFile(t, s1, u)
		if err != nil {
			t.Fatal(err)
		}
		first[f] = b
	}
	lf := func(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
	if !bytes.Equal(first[FileCSV], p.Attachments[0].Data) || lf(first[FileText]) != lf([]byte(p.Text)) || lf(first[FileHTML]) != lf([]byte(p.HTML)) {
		t.Error("the files differ from the e-mail sent whole")
	}

	// Later, on another replica, with more comments in: the same bytes.
	more := e.submit(t, d, 300, 40)
	e.settle(t, d)
	e.clock.Set(e.clock.Now().Add(36 * time.Hour))
	for f, u := range links {
		for i, s := range []*Scheduler{s1, s2} {
			b, err := openFile(t, s, u)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, first[f]) {
				t.Errorf("%s rebuilt on replica %d differs from the first build (%d bytes, then %d)", f, i+1, len(first[f]), len(b))
			}
		}
	}
	for _, c := range more {
		if bytes.Contains(first[FileCSV], []byte(c)) {
			t.Errorf("a comment received after the job started (%s) is in it", c)
		}
	}
	// A new job covers them.
	if _, err := s2.RequestInterim(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, s2)
	p2 := e.smtp.WaitFor(t, 2, 10*time.Second)[1].Parse(t)
	exactlyOnce(t, csvCodes(t, p2.Attachments[0].Data), append(codes, more...))
	checkKeys(t, e.rdb)
}

// TestInterimWaitsForQueue: an interim job fixes its range when it first
// starts, and is sent once every comment in the range is processed: a digest
// built while some were queued could not be rebuilt the same later.
func TestInterimWaitsForQueue(t *testing.T) {
	e := newStoreEnv(t)
	d := e.openDraft(t, "d-queued")
	codes := e.submit(t, d, 0, 50)
	s := e.scheduler(t, 0)
	if _, err := s.RequestInterim(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, s)
	tick(t, s)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages while the comments were queued", n)
	}
	later := e.submit(t, d, 50, 10) // after the job started: not in it
	e.settle(t, d)
	tick(t, s)
	p := e.smtp.WaitFor(t, 1, 10*time.Second)[0].Parse(t)
	exactlyOnce(t, csvCodes(t, p.Attachments[0].Data), codes)
	for _, c := range later {
		if bytes.Contains(p.Attachments[0].Data, []byte(c)) {
			t.Errorf("comment %s, submitted after the job started, is in it", c)
		}
	}
}

// TestOversizeDigest: a digest over the size limit goes as the summary with
// signed links; each link rebuilds its file, the CSV with every receipt once;
// an altered link and an expired one are refused.
func TestOversizeDigest(t *testing.T) {
	e := newStoreEnv(t)
	d := e.openDraft(t, "d-oversize")
	codes := e.submit(t, d, 0, 400)
	e.settle(t, d)
	const limit = 100_000
	s := e.scheduler(t, limit)
	if _, err := s.RequestInterim(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, s)
	m := e.smtp.WaitFor(t, 1, 10*time.Second)[0]
	if len(m.Data) > limit {
		t.Errorf("an e-mail of %d bytes, over the limit of %d", len(m.Data), limit)
	}
	p := m.Parse(t)
	checkSummary(t, Rendered{Text: []byte(p.Text), HTML: []byte(p.HTML)}, len(codes))
	if len(p.Attachments) != 0 {
		t.Errorf("summary with %d attachments", len(p.Attachments))
	}
	links := map[string]*url.URL{}
	for _, u := range summaryLinks(p.Text) {
		links[u.Path[strings.LastIndexByte(u.Path, '/')+1:]] = u
	}
	csvFile, err := openFile(t, s, links[FileCSV])
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, csvCodes(t, csvFile), codes)
	text, err := openFile(t, s, links[FileText])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text, []byte(fmt.Sprintf("意见总数 Comments: %d\n", len(codes)))) || bytes.Count(text, []byte("回执编号 Receipt: ")) != len(codes) {
		t.Error("the text file does not list every comment")
	}
	html, err := openFile(t, s, links[FileHTML])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if bytes.Count(html, []byte(">"+c+"<")) != 1 {
			t.Errorf("receipt %s not once in the HTML file", c)
			break
		}
	}

	tampered := *links[FileCSV]
	tampered.Path = strings.Replace(tampered.Path, "d-oversize", "d-other", 1)
	if _, err := openFile(t, s, &tampered); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("a link to another draft: %v, want ErrLinkInvalid", err)
	}
	q := links[FileCSV].Query()
	exp := q.Get("exp")
	q.Set("exp", exp[:len(exp)-1]+string('0'+(exp[len(exp)-1]-'0'+1)%10))
	tampered = *links[FileCSV]
	tampered.RawQuery = q.Encode()
	if _, err := openFile(t, s, &tampered); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("a link with its expiry changed: %v, want ErrLinkInvalid", err)
	}
	e.clock.Set(e.clock.Now().Add(30*24*time.Hour + time.Second))
	if _, err := openFile(t, s, links[FileCSV]); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("a link past its expiry: %v, want ErrLinkExpired", err)
	}
	if logs := e.logs.String(); strings.Contains(logs, "sig=") || strings.Contains(logs, q.Get("sig")) {
		t.Errorf("a link was logged:\n%s", logs)
	}
	if des, _ := os.ReadDir(e.spill); len(des) != 0 {
		t.Errorf("builds left %d files behind in the spill directory", len(des))
	}
}

// TestBuildMemoryFlat: the memory a build takes does not grow with the number
// of comments. During a build of 100k comments the heap the collector finds
// live may be at most 1.5 times what it is during one of 20k (it was 5 times,
// and 8.7 GB at 434k comments, while the whole digest was held in memory); and
// once built and rendered, the digest holds nothing in memory but its counts.
//
// The live heap, not the heap in use: how far the heap in use runs past the
// live heap depends on when the collector gets a core, and on a machine shared
// with other work that varied by three times between runs. Its 90th
// percentile over the collections, not its largest: a build of 100k goes
// through five times as many collections, and the largest of a noisy sample
// grows with its size (a collection counts live what was allocated while it
// marked).
func TestBuildMemoryFlat(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	small := buildMemory(t, 20_000)
	large := buildMemory(t, 100_000)
	t.Logf("live heap (90th percentile, largest) %d, %d KiB at 20k comments; %d, %d KiB at 100k; heap in use at most %d KiB, then %d KiB above the start",
		small.live>>10, small.liveMax>>10, large.live>>10, large.liveMax>>10, small.inUse>>10, large.inUse>>10)
	if large.live > small.live*3/2 {
		t.Errorf("the live heap grew from %d KiB at 20k comments to %d KiB at 100k", small.live>>10, large.live>>10)
	}
	for _, m := range []buildMem{small, large} {
		if m.retained > 64<<10 {
			t.Errorf("a built and rendered digest holds %d KiB", m.retained>>10)
		}
	}
}

type buildMem struct {
	live, liveMax uint64 // the live heap over the collections: 90th percentile, largest
	inUse         uint64 // the most heap in use above the start
	retained      int64  // heap still live after the build and the render, above the start
}

// buildMemory builds and renders a digest of n generated comments and
// measures its memory (see buildMem).
func buildMemory(t *testing.T, n int) buildMem {
	d := fixtureDraft()
	src := func(fn func(comments.Comment) error) error {
		for i := range n {
			sub := generated(d, i)
			c := comments.Comment{Code: fmt.Sprintf("7-GEN%08d", i), Entry: fmt.Sprintf("%d-0", i+1), DraftID: d.ID,
				Section: sub.Section, Body: sub.Body, Name: sub.Name, Contact: sub.Contact, Category: sub.Category,
				PublishName: sub.PublishName, ReceivedAt: time.UnixMilli(1_790_000_000_000 + int64(i)), SHA256: strings.Repeat("ab", 32),
				Status: comments.StatusStored, Duplicate: i%50 == 0}
			if i%1000 == 999 {
				c.Section = fmt.Sprintf("gone-%d", i%5) // a few anchors the draft lacks
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, baseAlloc := ms.HeapInuse, ms.HeapAlloc
	var m buildMem
	var lives []uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
		var cycles uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			m.inUse = max(m.inUse, ms.HeapInuse-min(base, ms.HeapInuse))
			metrics.Read(sample)
			if c := sample[1].Value.Uint64(); c != cycles {
				cycles = c
				lives = append(lives, sample[0].Value.Uint64())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	dg, err := Build(d, src, Options{Location: shanghai, Dir: t.TempDir(), Until: fmt.Sprintf("%d-0", n)})
	if err == nil {
		err = dg.WriteAll(io.Discard, io.Discard, io.Discard)
	}
	close(stop)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	m.retained = int64(ms.HeapAlloc) - int64(baseAlloc)
	dg.Close()
	if dg.Total != n {
		t.Fatalf("built %d comments, want %d", dg.Total, n)
	}
	if len(lives) == 0 {
		t.Fatal("no collection during the build")
	}
	slices.Sort(lives)
	m.live, m.liveMax = lives[len(lives)*9/10], lives[len(lives)-1]
	return m
}
