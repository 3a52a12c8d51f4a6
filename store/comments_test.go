package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	rec "consult/record"
)

const ruleText = "第一章 总则\n第一条 为了规范本市公共服务，制定本办法。\n第二条 本办法适用于本市行政区域。\n第二章 附则\n第三条 本办法自公布之日起施行。\n"

func setup(t *testing.T, opens, closes time.Time) (*Comments, *Drafts, redis.UniversalClient, drafts.Draft) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	ds := NewDrafts(rdb, nil)
	d, err := ds.Import(context.Background(), rec.AdminToken, drafts.Draft{
		ID: "test-rule", Title: "测试办法", Bureau: "司法局", Kind: drafts.KindRule, Text: ruleText,
		OpensAt: opens, ClosesAt: closes, DigestRecipients: []string{"bureau@example.gov.cn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return NewComments(rdb, ds, IntakeConfig{}), ds, rdb, d
}

func anchorOf(t *testing.T, d drafts.Draft, label string) string {
	t.Helper()
	for _, s := range d.Sections {
		if s.Label == label {
			return s.Anchor
		}
	}
	t.Fatalf("no section labelled %s in %+v", label, d.Sections)
	return ""
}

func TestSubmitWindowAndIdempotency(t *testing.T) {
	now := time.Now()
	s, _, _, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	sec := anchorOf(t, d, "第二条")

	r1, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Section: sec, Body: "建议明确适用范围。", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Code == "" || len(r1.SHA256) != 64 || r1.Section != sec || !strings.HasPrefix(r1.Code, fmt.Sprint(d.Ref)+"-") {
		t.Fatalf("receipt %+v", r1)
	}
	r2, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Section: sec, Body: "建议明确适用范围。", IdempotencyKey: "k1"})
	if err != nil || r2 != r1 {
		t.Fatalf("retry gave %+v, %v; want %+v", r2, err, r1)
	}
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Section: sec, Body: "另一条意见", IdempotencyKey: "k1"}); !errors.Is(err, comments.ErrIdempotencyMismatch) {
		t.Fatalf("reused key with other body: %v", err)
	}
	c, err := s.Counts(ctx, d.ID)
	if err != nil || c.Submitted != 1 {
		t.Fatalf("counts %+v %v, want 1 submitted", c, err)
	}
	st, err := s.Lookup(ctx, strings.ToLower(r1.Code))
	if err != nil || st.Status != comments.StatusQueued || st.DraftID != d.ID {
		t.Fatalf("lookup %+v %v", st, err)
	}
	var ve *comments.ValidationError
	_, err = s.Submit(ctx, comments.Submission{DraftID: d.ID, Section: "nope", Body: strings.Repeat("长", comments.MaxBody+1), Category: "alien"})
	if !errors.As(err, &ve) || ve.Fields["section"].Key == "" || ve.Fields["body"].Key == "" || ve.Fields["category"].Key == "" {
		t.Fatalf("invalid submission: %v", err)
	}
	if _, err := s.Submit(ctx, comments.Submission{DraftID: "missing", Body: "x"}); !errors.Is(err, drafts.ErrNotFound) {
		t.Fatalf("unknown draft: %v", err)
	}
	if c2, _ := s.Counts(ctx, d.ID); c2 != c {
		t.Fatalf("refused submissions changed counts: %+v -> %+v", c, c2)
	}
}

func TestSubmitOutsideWindow(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	s, _, _, d := setup(t, now.Add(time.Hour), now.Add(2*time.Hour))
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "早了"}); !errors.Is(err, comments.ErrWindowNotOpen) {
		t.Fatalf("before opening: %v", err)
	}
	s2, _, _, d2 := setup(t, now.Add(-2*time.Hour), now.Add(-time.Hour))
	if _, err := s2.Submit(ctx, comments.Submission{DraftID: d2.ID, Body: "晚了"}); !errors.Is(err, comments.ErrWindowClosed) {
		t.Fatalf("after closing: %v", err)
	}
	if closed, err := s2.WindowClosed(ctx, d2.ID); err != nil || !closed {
		t.Fatalf("WindowClosed = %v, %v", closed, err)
	}
}

func TestWorkerStoresOnceAndClaimsFromCrashedWorker(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	const n = 300
	codes := map[string]bool{}
	for i := 0; i < n; i++ {
		r, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: fmt.Sprintf("意见 %d", i), Contact: "138", Name: "张三"})
		if err != nil {
			t.Fatal(err)
		}
		codes[r.Code] = true
	}
	// A poison entry written by something other than the intake.
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: intakeStream(d.ID), Values: []string{"garbage", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}

	// The first worker crashes after reading its first batch and storing part of it.
	crashed := NewWorker(rdb, WorkerConfig{Consumer: "crashed", Batch: 100, ClaimIdle: 50 * time.Millisecond, ClaimEvery: time.Hour})
	seen := 0
	crashed.beforeAck = func(string) error {
		seen++
		if seen > 40 {
			return errors.New("crash")
		}
		return nil
	}
	if err := crashed.Run(ctx); !errors.Is(err, errStopped) {
		t.Fatalf("crashed worker returned %v", err)
	}
	pending, err := rdb.XPending(ctx, intakeStream(d.ID), group).Result()
	if err != nil || pending.Count == 0 {
		t.Fatalf("want entries left pending by the crashed worker, got %+v %v", pending, err)
	}

	time.Sleep(60 * time.Millisecond) // let the crashed worker's entries become idle enough to claim
	before := numGoroutines()
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		w := NewWorker(rdb, WorkerConfig{Consumer: fmt.Sprintf("w%d", i), Batch: 50, ClaimIdle: 50 * time.Millisecond, ClaimEvery: 20 * time.Millisecond})
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.Counts(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := rdb.XLen(ctx, deadStream(d.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if c.Settled() && dead > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %+v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if after := numGoroutines(); after > before+1 {
		t.Errorf("goroutines: %d before workers, %d after", before, after)
	}

	all, err := s.All(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("stored %d comments, want %d", len(all), n)
	}
	for _, c := range all {
		if !codes[c.Code] {
			t.Fatalf("unexpected or duplicate comment %s", c.Code)
		}
		delete(codes, c.Code)
		if c.Contact != "138" || c.ReceivedAt.IsZero() {
			t.Fatalf("comment lost fields: %+v", c)
		}
	}
	for code := range map[string]bool{all[0].Code: true, all[n-1].Code: true} {
		if st, err := s.Lookup(ctx, code); err != nil || st.Status != comments.StatusStored {
			t.Fatalf("lookup %s after settling: %+v %v", code, st, err)
		}
	}
	dead, err := rdb.XLen(ctx, deadStream(d.ID)).Result()
	if err != nil || dead != 1 {
		t.Fatalf("dead-letter stream has %d entries (%v), want 1", dead, err)
	}
	if p, _ := rdb.XPending(ctx, intakeStream(d.ID), group).Result(); p.Count != 0 {
		t.Fatalf("still pending: %+v", p)
	}
	c, _ := s.Counts(ctx, d.ID)
	// The poison entry counts as submitted and rejected: every entry is settled once.
	if c.Submitted != n+1 || c.Stored != n || c.Rejected != 1 {
		t.Fatalf("counts %+v", c)
	}
}

// TestPoisonWithReceiptIsRejected: an entry delivered too often is dead-lettered;
// its receipt then reads rejected, it counts once as rejected, and the digest's
// comments leave it out.
func TestPoisonWithReceiptIsRejected(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	r, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "反复失败的意见"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XGroupCreateMkStream(ctx, intakeStream(d.ID), group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "flaky", Streams: []string{intakeStream(d.ID), ">"}, Count: 10, Block: -1}).Result()
	if err != nil || len(msgs[0].Messages) != 1 {
		t.Fatalf("read: %v %v", msgs, err)
	}
	id := msgs[0].Messages[0].ID
	for i := 0; i < 4; i++ { // each claim is one more delivery
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: intakeStream(d.ID), Group: group, Consumer: "flaky", Messages: []string{id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := s.Lookup(ctx, r.Code); st.Status != comments.StatusQueued {
		t.Fatalf("before: %+v", st)
	}
	time.Sleep(5 * time.Millisecond)
	w := NewWorker(rdb, WorkerConfig{Consumer: "w", MaxDeliveries: 3, ClaimIdle: time.Millisecond, ClaimEvery: time.Millisecond, Poll: 5 * time.Millisecond})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = w.Run(wctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := s.Counts(ctx, d.ID); c.Settled() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("poison entry never settled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if c, _ := s.Counts(ctx, d.ID); c != (comments.Counts{Submitted: 1, Stored: 0, Rejected: 1}) {
		t.Fatalf("counts %+v", c)
	}
	st, err := s.Lookup(ctx, r.Code)
	if err != nil || st.Status != comments.StatusRejected || st.SHA256 != r.SHA256 || !st.ReceivedAt.Equal(r.ReceivedAt) {
		t.Fatalf("after: %+v %v (receipt %+v)", st, err, r)
	}
	page, _, err := s.Page(ctx, d.ID, "", 10)
	if err != nil || len(page) != 1 || page[0].Status != comments.StatusRejected {
		t.Fatalf("page: %+v %v", page, err)
	}
	if all, err := s.All(ctx, d.ID); err != nil || len(all) != 0 {
		t.Fatalf("All kept a rejected comment: %+v %v", all, err)
	}
	if n, _ := rdb.XLen(ctx, deadStream(d.ID)).Result(); n != 1 {
		t.Fatalf("dead-letter stream has %d entries", n)
	}
}

// TestCloseStopsIntake: Close ends the intake's pipeline goroutines; a submission
// afterwards fails instead of hanging.
func TestCloseStopsIntake(t *testing.T) {
	now := time.Now()
	s, _, _, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "关闭前"}); err != nil {
		t.Fatal(err)
	}
	before := numGoroutines()
	s.Close()
	if after := numGoroutines(); after > before-s.cfg.Lanes {
		t.Errorf("goroutines: %d before Close, %d after; want %d fewer", before, after, s.cfg.Lanes)
	}
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "关闭后"}); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
