package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jordan-wright/email"
	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	"consult/internal/smtptest"
)

// fakeDrafts and fakeComments stand in for drafts.Store and comments.Store: the
// Scheduler's own state lives in a real Redis, its sources here.
type fakeDrafts struct {
	mu sync.Mutex
	m  map[string]drafts.Draft
}

func (f *fakeDrafts) put(d drafts.Draft) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[d.ID] = d
}

func (f *fakeDrafts) Get(_ context.Context, id string) (drafts.Draft, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.m[id]
	if !ok {
		return drafts.Draft{}, drafts.ErrNotFound
	}
	return d, nil
}

func (f *fakeDrafts) ClosedBefore(_ context.Context, t time.Time) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, d := range f.m {
		if !d.ClosesAt.After(t) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

type fakeComments struct {
	mu     sync.Mutex
	cs     map[string][]comments.Comment
	counts map[string]comments.Counts
	closed map[string]bool // the window by "Redis's clock"
}

func (f *fakeComments) set(draftID string, cs []comments.Comment, counts comments.Counts, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs[draftID] = cs
	f.counts[draftID] = counts
	f.closed[draftID] = closed
}

// Each and Head follow store.Comments: stream order, accepted comments only, up
// to until.
func (f *fakeComments) Each(_ context.Context, id, until string, fn func(comments.Comment) error) error {
	f.mu.Lock()
	cs := inStreamOrder(f.cs[id])
	f.mu.Unlock()
	for _, c := range cs {
		if compareEntries(c.Entry, until) > 0 {
			return nil
		}
		if c.Status != comments.StatusStored {
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeComments) Head(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	head := "0-0"
	for _, c := range f.cs[id] {
		if compareEntries(c.Entry, head) > 0 {
			head = c.Entry
		}
	}
	return head, nil
}

func (f *fakeComments) Counts(_ context.Context, id string) (comments.Counts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[id], nil
}

// Settled stands for the store's range check with the draft's counts: these
// tests set whole drafts settled or not.
func (f *fakeComments) Settled(_ context.Context, id, _ string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[id].Settled(), nil
}

func (f *fakeComments) WindowClosed(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed[id], nil
}

// clock is a time tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const smtpPassword = "s3cret-pw"

type env struct {
	redis    *redistest.Server
	rdb      redis.UniversalClient
	smtp     *smtptest.Server
	drafts   *fakeDrafts
	comments *fakeComments
	clock    *clock
	logs     *syncBuffer
	spillDir string
}

var testLinkKey = LinkKey("0123456789abcdef0123456789abcdef")

func newEnv(t *testing.T, o smtptest.Options) *env {
	t.Helper()
	o.Username, o.Password = "digest", smtpPassword
	srv := redistest.Start(t)
	e := &env{
		redis:    srv,
		rdb:      srv.Client(t),
		smtp:     smtptest.Start(t, o),
		drafts:   &fakeDrafts{m: map[string]drafts.Draft{}},
		comments: &fakeComments{cs: map[string][]comments.Comment{}, counts: map[string]comments.Counts{}, closed: map[string]bool{}},
		clock:    &clock{t: at("2026-12-01T09:00:00Z")}, // 17:00 in Shanghai, an hour before the fixture closes
		logs:     &syncBuffer{},
		spillDir: t.TempDir(),
	}
	return e
}

// scheduler makes a Scheduler as cmd/consultd would, with its own Redis client
// when separate is set (a second replica).
func (e *env) scheduler(t *testing.T, separate bool, mods ...func(*Config)) *Scheduler {
	t.Helper()
	rdb := e.rdb
	if separate {
		rdb = e.redis.Client(t)
	}
	u := url.URL{Scheme: "smtp", User: url.UserPassword("digest", smtpPassword), Host: e.smtp.Addr}
	m, err := NewSMTPMailer(SMTPConfig{URL: u.String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		From:      testFrom,
		BaseURL:   "https://consult.example.gov.cn",
		Paths:     testPaths,
		Location:  shanghai,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       e.clock.Now,
		Interval:  5 * time.Millisecond,
		RetryBase: time.Minute,
		RetryMax:  5 * time.Minute,
		LinkKey:   testLinkKey,
		SpillDir:  e.spillDir,
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	s, err := NewScheduler(rdb, e.drafts, e.comments, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addDraft stores a draft like the fixture, with its comments all processed.
func (e *env) addDraft(id string, recipients ...string) drafts.Draft {
	d := fixtureDraft()
	d.ID = id
	d.DigestRecipients = recipients
	e.drafts.put(d)
	cs := fixtureComments()
	for i := range cs {
		cs[i].DraftID = id
	}
	n := int64(len(cs))
	e.comments.set(id, cs, comments.Counts{Submitted: n + 1, Stored: n, Rejected: 1}, false)
	return d
}

// close closes a draft's window by both clocks.
func (e *env) close(d drafts.Draft) {
	e.clock.Set(d.ClosesAt.Add(time.Second))
	e.comments.mu.Lock()
	e.comments.closed[d.ID] = true
	e.comments.mu.Unlock()
}

func tick(t *testing.T, s *Scheduler) {
	t.Helper()
	if err := s.tick(context.Background()); err != nil {
		t.Fatalf("tick: %v", err)
	}
}

// run starts s.Run and returns a function that stops it and waits for it.
func run(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkGoroutines records how many goroutines run now; the function it returns
// fails the test if more are still running a few seconds later.
func checkGoroutines(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// byRecipient counts messages per envelope recipient.
func byRecipient(msgs []smtptest.Message) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		for _, r := range m.To {
			n[r]++
		}
	}
	return n
}

func sameCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("messages per recipient = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("messages per recipient = %v, want %v", got, want)
			return
		}
	}
}

func TestSchedulerSendsOnceAfterClose(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	d := e.addDraft("hongya-fazhi-2026", "fzb@hongya.example.gov.cn", "director@hongya.example.gov.cn", "FZB@hongya.example.gov.cn")
	leaks := checkGoroutines(t)

	s := e.scheduler(t, false)
	stop := run(t, s)
	// Open by both clocks: nothing is sent.
	time.Sleep(50 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages while the window is open", n)
	}
	e.close(d)
	msgs := e.smtp.WaitFor(t, 2, 10*time.Second)
	time.Sleep(50 * time.Millisecond) // ticks go on; nothing more may be sent
	stop()
	leaks()

	msgs = e.smtp.Messages()
	// FZB@ is the same mailbox as fzb@: one message.
	sameCounts(t, byRecipient(msgs), map[string]int{"fzb@hongya.example.gov.cn": 1, "director@hongya.example.gov.cn": 1})
	r := wholeMail(t, build(t, d, e.comments.cs[d.ID], Options{Location: shanghai, BaseURL: "https://consult.example.gov.cn", Paths: testPaths,
		GeneratedAt: e.clock.Now(), Until: fixtureHead}))
	for _, m := range msgs {
		want, _ := MessageID(d.ID, finalJob, m.To[0], testFrom)
		checkDelivered(t, m, r, m.To[0], want)
		if m.User != "digest" {
			t.Errorf("sent as %q, want AUTH as digest", m.User)
		}
	}
	if sent, failed := s.Stats(); sent != 2 || failed != 0 {
		t.Errorf("Stats() = %d, %d; want 2, 0", sent, failed)
	}
	ctx := context.Background()
	if ok, _ := e.rdb.SIsMember(ctx, doneKey, d.ID).Result(); !ok {
		t.Error("draft not in the done set")
	}
	rec, err := e.rdb.HGetAll(ctx, sentKey(d.ID, finalJob)).Result()
	if err != nil || len(rec) != 2 {
		t.Errorf("sent record = %v (%v), want 2 recipients", rec, err)
	}
	for r, v := range rec {
		if when, err := time.Parse(time.RFC3339Nano, v); err != nil || !when.Equal(e.clock.Now()) {
			t.Errorf("recipient %s recorded at %q", r, v)
		}
	}

	// A restarted process, and a later close of the window: still one each.
	s2 := e.scheduler(t, true)
	for range 3 {
		tick(t, s2)
	}
	e.clock.Advance(time.Hour)
	tick(t, s2)
	if n := len(e.smtp.Messages()); n != 2 {
		t.Errorf("%d messages after a restart, want 2", n)
	}
	checkKeys(t, e.rdb)
	if strings.Contains(e.logs.String(), smtpPassword) {
		t.Error("the SMTP password appears in the log")
	}
}

// checkKeys checks that every key the digest writes but the global ones carries
// a draft's hash tag, so that a draft's keys share a Cluster slot: its own
// keys, and the draft's record, which a delivery appends to. Other packages'
// keys (the store's, in tests on the real one) are theirs to check.
func checkKeys(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == doneKey || k == interimKey || k == linkKeyKey || !strings.Contains(k, "digest") && !strings.HasSuffix(k, ":events") {
			continue
		}
		if !strings.HasPrefix(k, "consult:{") || !strings.Contains(k, "}:digest:") && !strings.HasSuffix(k, "}:events") {
			t.Errorf("key %q has no draft hash tag", k)
		}
	}
}

func TestSchedulerReplicasSendOnce(t *testing.T) {
	e := newEnv(t, smtptest.Options{DataDelay: 5 * time.Millisecond})
	want := map[string]int{}
	var ds []drafts.Draft
	for i := range 4 {
		var rs []string
		for j := range 3 {
			r := fmt.Sprintf("r%d@bureau%d.example.gov.cn", j, i)
			rs = append(rs, r)
			want[r] = 1
		}
		ds = append(ds, e.addDraft(fmt.Sprintf("draft-%d", i), rs...))
	}
	leaks := checkGoroutines(t)
	var stops []func()
	var ss []*Scheduler
	for range 3 {
		s := e.scheduler(t, true)
		ss = append(ss, s)
		stops = append(stops, run(t, s))
	}
	for _, d := range ds {
		e.close(d)
	}
	e.smtp.WaitFor(t, len(want), 20*time.Second)
	time.Sleep(100 * time.Millisecond)
	for _, stop := range stops {
		stop()
	}
	leaks()
	sameCounts(t, byRecipient(e.smtp.Messages()), want)
	var total int64
	for _, s := range ss {
		sent, failed := s.Stats()
		total += sent
		if failed != 0 {
			t.Errorf("failed = %d", failed)
		}
	}
	if total != int64(len(want)) {
		t.Errorf("replicas report %d sent, want %d", total, len(want))
	}
	if n, _ := e.rdb.SCard(context.Background(), doneKey).Result(); n != int64(len(ds)) {
		t.Errorf("done set has %d drafts, want %d", n, len(ds))
	}
}

func TestSchedulerWaits(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	d := e.addDraft("d-wait", "fzb@example.gov.cn")
	s := e.scheduler(t, false)

	// Closed by our clock, open by Redis's: Redis decides.
	e.clock.Set(d.ClosesAt.Add(time.Second))
	tick(t, s)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages before Redis's clock closed the window", n)
	}

	// Closed, but one comment queued in time is not processed yet.
	cs := fixtureComments()
	e.comments.set(d.ID, cs[:5], comments.Counts{Submitted: 7, Stored: 5, Rejected: 1}, true)
	tick(t, s)
	tick(t, s)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages before the counts settled", n)
	}

	// The worker stores it: the digest goes out with all six.
	e.comments.set(d.ID, cs, comments.Counts{Submitted: 7, Stored: 6, Rejected: 1}, true)
	tick(t, s)
	msgs := e.smtp.WaitFor(t, 1, 5*time.Second)
	p := msgs[0].Parse(t)
	rows := readCSV(t, p.Attachments[0].Data)
	if len(rows)-1 != len(cs) {
		t.Errorf("CSV has %d comments, want %d", len(rows)-1, len(cs))
	}
	if !strings.Contains(p.Text, "意见总数 Comments: 6") {
		t.Error("text body does not count six comments")
	}
}

func TestSchedulerRetries(t *testing.T) {
	e := newEnv(t, smtptest.Options{FailFirst: 3})
	d := e.addDraft("d-retry", "a@example.gov.cn", "b@example.gov.cn")
	e.close(d)
	ctx := context.Background()
	leaks := checkGoroutines(t)

	s := e.scheduler(t, false)
	tick(t, s) // a and b refused: refusals 1 and 2
	if got := e.smtp.Refused(); got != 2 {
		t.Fatalf("%d refusals after the first tick, want 2", got)
	}
	retry, _ := e.rdb.HGetAll(ctx, retryKey(d.ID, finalJob)).Result()
	next := e.clock.Now().Add(time.Minute).UnixMilli()
	if want := fmt.Sprintf("1 %d", next); retry["a@example.gov.cn"] != want || retry["b@example.gov.cn"] != want {
		t.Errorf("retry state = %v, want %q for both", retry, want)
	}

	// Backing off, here and on another replica: no attempt.
	s2 := e.scheduler(t, true)
	tick(t, s)
	tick(t, s2)
	e.clock.Advance(59 * time.Second)
	tick(t, s2)
	if got := e.smtp.Refused(); got != 2 || len(e.smtp.Messages()) != 0 {
		t.Fatalf("attempts during backoff: %d refusals, %d messages", got, len(e.smtp.Messages()))
	}

	// Backoff over: a is refused a second time (waits 2 min now), b goes through.
	e.clock.Advance(time.Second)
	tick(t, s2)
	sameCounts(t, byRecipient(e.smtp.Messages()), map[string]int{"b@example.gov.cn": 1})
	e.clock.Advance(time.Minute)
	tick(t, s)
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("%d messages one minute into a two-minute backoff, want 1", n)
	}
	if ok, _ := e.rdb.SIsMember(ctx, doneKey, d.ID).Result(); ok {
		t.Fatal("draft marked done with a recipient missing")
	}
	e.clock.Advance(time.Minute)
	tick(t, s)
	tick(t, s2)
	sameCounts(t, byRecipient(e.smtp.Messages()), map[string]int{"a@example.gov.cn": 1, "b@example.gov.cn": 1})
	if ok, _ := e.rdb.SIsMember(ctx, doneKey, d.ID).Result(); !ok {
		t.Error("draft not marked done")
	}
	if n, _ := e.rdb.Exists(ctx, retryKey(d.ID, finalJob)).Result(); n != 0 {
		t.Error("retry state left behind")
	}
	sent1, failed1 := s.Stats()
	sent2, failed2 := s2.Stats()
	if sent1+sent2 != 2 || failed1+failed2 != 3 {
		t.Errorf("Stats: sent %d+%d, failed %d+%d; want 2 and 3", sent1, sent2, failed1, failed2)
	}
	leaks()

	logs := e.logs.String()
	if strings.Count(logs, "digest send failed") != 3 || !strings.Contains(logs, "draft=d-retry") || !strings.Contains(logs, "recipient=a@example.gov.cn") {
		t.Errorf("failures not logged with draft and recipient:\n%s", logs)
	}
	if strings.Contains(logs, smtpPassword) {
		t.Error("the SMTP password appears in the log")
	}
}

func TestFailScriptBackoff(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	ctx := context.Background()
	now := int64(1_800_000_000_000)
	var waits []int64
	for range 7 {
		res, err := failScript.Run(ctx, e.rdb, []string{retryKey("d", finalJob)}, "x@example.org", now, 1000, 5*60*1000).Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, res[1]-now)
	}
	if want := []int64{1000, 2000, 4000, 8000, 16000, 32000, 64000}; !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v", waits, want)
	}
	for range 20 {
		res, _ := failScript.Run(ctx, e.rdb, []string{retryKey("d", finalJob)}, "x@example.org", now, 1000, 5*60*1000).Int64Slice()
		waits = append(waits, res[1]-now)
	}
	if last := waits[len(waits)-1]; last != 5*60*1000 {
		t.Errorf("wait after 27 failures = %d ms, want the 5 min cap", last)
	}
}

func TestSchedulerInterim(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	d := e.addDraft("d-interim", "a@example.gov.cn", "b@example.gov.cn")
	ctx := context.Background()
	s := e.scheduler(t, false)

	if _, err := s.RequestInterim(ctx, "no-such-draft"); !errors.Is(err, drafts.ErrNotFound) {
		t.Errorf("RequestInterim(unknown) = %v, want drafts.ErrNotFound", err)
	}
	job, err := s.RequestInterim(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("interim-%d", e.clock.Now().UnixMilli()); job != want {
		t.Errorf("job = %q, want %q", job, want)
	}
	tick(t, s) // the window is open: the interim digest goes anyway
	tick(t, s)
	msgs := e.smtp.WaitFor(t, 2, 5*time.Second)
	sameCounts(t, byRecipient(msgs), map[string]int{"a@example.gov.cn": 1, "b@example.gov.cn": 1})
	for _, m := range msgs {
		p := m.Parse(t)
		want, _ := MessageID(d.ID, job, m.To[0], testFrom)
		if got := p.Header.Get("Message-Id"); got != want || !strings.Contains(got, "."+job+".") {
			t.Errorf("Message-Id = %q, want %q", got, want)
		}
		if !strings.HasPrefix(p.Subject, "【意见汇总·中期 Interim】") || !strings.Contains(p.Text, "中期 Interim") {
			t.Errorf("interim digest subject %q", p.Subject)
		}
		if p.Attachments[0].Filename != "d-interim-interim-comments.csv" {
			t.Errorf("attachment %q", p.Attachments[0].Filename)
		}
	}
	if n, _ := e.rdb.ZCard(ctx, interimKey).Result(); n != 0 {
		t.Errorf("%d interim requests left", n)
	}
	if ok, _ := e.rdb.SIsMember(ctx, doneKey, d.ID).Result(); ok {
		t.Error("an interim digest marked the final one done")
	}

	// The final digest still goes out after close, under its own Message-ID.
	e.close(d)
	tick(t, s)
	msgs = e.smtp.WaitFor(t, 4, 5*time.Second)
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.Parse(t).Header.Get("Message-Id")] = true
	}
	if len(ids) != 4 {
		t.Errorf("%d distinct Message-IDs in 4 messages", len(ids))
	}
	checkKeys(t, e.rdb)
}

// TestSchedulerShutdown cancels Run while a message is on the wire: Run returns
// once that delivery is over and recorded, and a restart sends only the rest.
func TestSchedulerShutdown(t *testing.T) {
	e := newEnv(t, smtptest.Options{DataDelay: 300 * time.Millisecond})
	d := e.addDraft("d-stop", "a@example.gov.cn", "b@example.gov.cn", "c@example.gov.cn")
	e.close(d)
	leaks := checkGoroutines(t)

	s := e.scheduler(t, false)
	stop := run(t, s)
	time.Sleep(100 * time.Millisecond) // the first message is in DATA
	start := time.Now()
	stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v to return", took)
	}
	leaks()
	first := e.smtp.Messages()
	if len(first) != 1 {
		t.Fatalf("%d messages after shutdown, want the one under way", len(first))
	}
	if v, err := e.rdb.HGet(context.Background(), sentKey(d.ID, finalJob), first[0].To[0]).Result(); err != nil || v == "" {
		t.Errorf("the delivery under way was not recorded: %q, %v", v, err)
	}
	if n, _ := e.rdb.Exists(context.Background(), leaseKey(d.ID)).Result(); n != 0 {
		t.Error("the lease was not released at shutdown")
	}

	tick(t, e.scheduler(t, true))
	sameCounts(t, byRecipient(e.smtp.Messages()), map[string]int{"a@example.gov.cn": 1, "b@example.gov.cn": 1, "c@example.gov.cn": 1})
}

func TestNewSchedulerChecksConfig(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	m, _ := NewOutbox(t.TempDir(), nil)
	for _, c := range []Config{
		{From: "", LinkKey: testLinkKey, Paths: testPaths},
		{From: "no-domain", LinkKey: testLinkKey, Paths: testPaths},
		{From: testFrom, Paths: testPaths},
		{From: testFrom, LinkKey: testLinkKey[:MinLinkKey-1], Paths: testPaths},
		{From: testFrom, LinkKey: testLinkKey, MaxBytes: 1000, Paths: testPaths},
		{From: testFrom, LinkKey: testLinkKey, LeaseTTL: time.Millisecond, Paths: testPaths},
		{From: testFrom, LinkKey: testLinkKey},
	} {
		if _, err := NewScheduler(e.rdb, e.drafts, e.comments, m, c); err == nil {
			t.Errorf("NewScheduler accepted %+v", c)
		}
	}
	if _, err := NewScheduler(e.rdb, e.drafts, e.comments, nil, Config{From: testFrom, LinkKey: testLinkKey, Paths: testPaths}); err == nil {
		t.Error("NewScheduler accepted a nil mailer")
	}
	s, err := NewScheduler(e.rdb, e.drafts, e.comments, m, Config{From: testFrom, LinkKey: testLinkKey, Paths: testPaths})
	if err != nil {
		t.Fatal(err)
	}
	// A crashed holder's draft must come back within seconds, not minutes.
	if s.cfg.LeaseTTL > 20*time.Second || s.cfg.MaxBytes != 10_000_000 || s.cfg.LinkTTL != 30*24*time.Hour {
		t.Errorf("defaults: lease %v, max bytes %d, link TTL %v", s.cfg.LeaseTTL, s.cfg.MaxBytes, s.cfg.LinkTTL)
	}
}

// TestSchedulerFinishesRecordedJob: a replica recorded every recipient and
// stopped before marking the draft done. The next tick marks it, sending nothing.
func TestSchedulerFinishesRecordedJob(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	d := e.addDraft("d-recorded", "a@example.gov.cn", "b@example.gov.cn")
	e.close(d)
	ctx := context.Background()
	e.rdb.HSet(ctx, sentKey(d.ID, finalJob), "a@example.gov.cn", "2026-12-01T10:00:02Z", "b@example.gov.cn", "2026-12-01T10:00:03Z")
	tick(t, e.scheduler(t, false))
	if ok, _ := e.rdb.SIsMember(ctx, doneKey, d.ID).Result(); !ok {
		t.Error("draft not marked done")
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d messages sent to recipients already recorded", n)
	}
}

// TestSchedulerLeaseTakenOver: a holder that crashed left its lease behind. A
// replica takes the draft over as soon as the short lease expires, not minutes
// later.
func TestSchedulerLeaseTakenOver(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	d := e.addDraft("d-crashed", "a@example.gov.cn", "b@example.gov.cn")
	e.close(d)
	const ttl = 500 * time.Millisecond
	ctx := context.Background()
	// What a crashed holder leaves: its lease, as it took it, and no renewer.
	if err := e.rdb.Set(ctx, leaseKey(d.ID), "token-of-a-crashed-replica", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	leaks := checkGoroutines(t)
	s := e.scheduler(t, true, func(c *Config) { c.LeaseTTL = ttl })
	start := time.Now()
	stop := run(t, s)
	e.smtp.WaitFor(t, 2, 10*time.Second)
	took := time.Since(start)
	stop()
	leaks()
	sameCounts(t, byRecipient(e.smtp.Messages()), map[string]int{"a@example.gov.cn": 1, "b@example.gov.cn": 1})
	// Not before the crashed holder's lease ran out, and well before the two
	// minutes a crash used to cost.
	if took < ttl-50*time.Millisecond || took > 10*time.Second {
		t.Errorf("taken over after %v with a lease of %v", took, ttl)
	}
}

// TestSchedulerRenewsLease: each delivery takes longer than the whole lease.
// The holder renews it in the background, so the other replica, ticking all
// along, never takes the draft over mid-delivery and sends nothing twice.
func TestSchedulerRenewsLease(t *testing.T) {
	e := newEnv(t, smtptest.Options{DataDelay: 700 * time.Millisecond})
	d := e.addDraft("d-renew", "a@example.gov.cn", "b@example.gov.cn", "c@example.gov.cn")
	e.close(d)
	const ttl = 300 * time.Millisecond
	leaks := checkGoroutines(t)
	var stops []func()
	for range 2 {
		stops = append(stops, run(t, e.scheduler(t, true, func(c *Config) { c.LeaseTTL = ttl })))
	}
	e.smtp.WaitFor(t, 3, 20*time.Second)
	for _, stop := range stops {
		stop()
	}
	leaks()
	sameCounts(t, byRecipient(e.smtp.Messages()), map[string]int{"a@example.gov.cn": 1, "b@example.gov.cn": 1, "c@example.gov.cn": 1})
	if strings.Contains(e.logs.String(), "lease lost") {
		t.Errorf("a holder lost its lease while working:\n%s", e.logs.String())
	}
}

// startSignal is the real SMTP mailer, telling the test when a delivery starts.
type startSignal struct {
	Mailer
	started chan struct{}
}

func (m startSignal) Send(ctx context.Context, e *email.Email) error {
	select {
	case m.started <- struct{}{}:
	default:
	}
	return m.Mailer.Send(ctx, e)
}

// TestSchedulerStopsWhenLeaseLost: the lease passes to another replica while
// the holder delivers (it was cut off from Redis longer than the lease, say).
// The renewer notices; the holder finishes the delivery under way, starts no
// other, and leaves the other's lease alone.
func TestSchedulerStopsWhenLeaseLost(t *testing.T) {
	e := newEnv(t, smtptest.Options{DataDelay: 400 * time.Millisecond})
	d := e.addDraft("d-lost", "a@example.gov.cn", "b@example.gov.cn", "c@example.gov.cn")
	e.close(d)
	leaks := checkGoroutines(t)
	s := e.scheduler(t, false, func(c *Config) { c.LeaseTTL = 150 * time.Millisecond })
	started := make(chan struct{}, 1)
	s.mailer = startSignal{Mailer: s.mailer, started: started}
	done := make(chan error, 1)
	go func() { done <- s.work(context.Background(), job{draftID: d.ID, name: finalJob}) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery started")
	}
	e.rdb.Set(context.Background(), leaseKey(d.ID), "another-replica", time.Minute)
	if err := <-done; err != nil {
		t.Fatalf("work: %v", err)
	}
	leaks()
	if n := len(e.smtp.Messages()); n != 1 {
		t.Errorf("%d messages, want only the one under way when the lease was lost", n)
	}
	if v, _ := e.rdb.Get(context.Background(), leaseKey(d.ID)).Result(); v != "another-replica" {
		t.Errorf("the lease now reads %q: the holder released another's lease", v)
	}
	if !strings.Contains(e.logs.String(), "lease lost") {
		t.Error("the lost lease was not logged")
	}
}
