package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
	"consult/internal/redistest"
	rec "consult/record"
)

// sendCall runs one prepared comment through a batch, as a lane would.
func sendCall(s *Comments, d drafts.Draft, p *pending) *call {
	c := &call{draftID: d.ID, p: p, done: make(chan struct{}), keys: [6]string{draftHash(d.ID), intakeStream(d.ID),
		receiptsHash(d.ID), piiHash(d.ID), countsHash(d.ID), dupSet(d.ID)}}
	s.batch.send([]*call{c})
	return c
}

func prepared(t testing.TB, d drafts.Draft, sub comments.Submission, notAfter time.Time) *pending {
	t.Helper()
	sub.DraftID = d.ID
	comments.Normalize(&sub)
	code, err := comments.NewCode(d.Ref)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPending(sub, code)
	if err != nil {
		t.Fatal(err)
	}
	p.notAfter = notAfter
	return p
}

// TestScriptSentTwiceStoresOnce is go-redis sending a pipeline again after a read
// timeout when the first copy had run: the second finds the code and stores nothing.
func TestScriptSentTwiceStoresOnce(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	p := prepared(t, d, comments.Submission{Body: "只存一次", Name: "李四"}, now.Add(time.Minute))
	first := sendCall(s, d, p)
	again := sendCall(s, d, p)
	if first.err != nil || again.err != nil || first.out.kind != "OK" || again.out.kind != "DONE" {
		t.Fatalf("outcomes %+v %v, %+v %v; want OK then DONE", first.out, first.err, again.out, again.err)
	}
	if first.out.rec != again.out.rec {
		t.Fatalf("records differ: %+v vs %+v", first.out.rec, again.out.rec)
	}
	if n := rdb.XLen(ctx, intakeStream(d.ID)).Val(); n != 1 {
		t.Fatalf("stream has %d entries, want 1", n)
	}
}

// TestLateScriptStoresNothing: a script that reaches Redis after its caller's
// not-after time (by Redis's clock) is refused and leaves nothing behind.
func TestLateScriptStoresNothing(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	c := sendCall(s, d, prepared(t, d, comments.Submission{Body: "来迟了", Contact: "13800000000"}, now.Add(-time.Second)))
	if c.err != nil || c.out.kind != "ERR" || c.out.reason != "LATE" {
		t.Fatalf("outcome %+v %v, want ERR LATE", c.out, c.err)
	}
	for _, k := range []string{intakeStream(d.ID), receiptsHash(d.ID), piiHash(d.ID)} {
		if n := rdb.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s exists after a refused comment", k)
		}
	}
}

// TestPersonalDataApart: names and contacts never enter the intake stream (the
// record, never rewritten) nor the dead-letter stream; reading joins them back;
// erasing them breaks no receipt.
func TestPersonalDataApart(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	const name, contact = "王小明", "wang@example.com"
	r, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "建议增加听证程序。", Name: name, Contact: contact, PublishName: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := rdb.XRange(ctx, intakeStream(d.ID), "-", "+").Val()
	if len(msgs) != 1 {
		t.Fatalf("%d entries", len(msgs))
	}
	raw := fmt.Sprint(msgs[0].Values)
	if code, _, reason := check(d.ID, msgs[0]); strings.Contains(raw, name) || strings.Contains(raw, contact) || code != r.Code || reason != "" {
		t.Fatalf("stream entry %s: personal data inside, or no version", raw)
	}
	cs, _, err := s.Page(ctx, d.ID, "", 10)
	if err != nil || len(cs) != 1 || cs[0].Name != name || cs[0].Contact != contact || cs[0].SHA256 != r.SHA256 {
		t.Fatalf("page %+v %v", cs, err)
	}

	// Erasure is deleting the code's field: the comment and its digest stay whole.
	if err := rdb.HDel(ctx, piiHash(d.ID), r.Code).Err(); err != nil {
		t.Fatal(err)
	}
	cs, _, err = s.Page(ctx, d.ID, "", 10)
	if err != nil || len(cs) != 1 || cs[0].Name != "" || cs[0].Contact != "" || cs[0].SHA256 != r.SHA256 || cs[0].Body == "" {
		t.Fatalf("after erasure %+v %v", cs, err)
	}
	st, err := s.Lookup(ctx, r.Code)
	if err != nil || st.SHA256 != r.SHA256 {
		t.Fatalf("lookup after erasure %+v %v", st, err)
	}

	// A dead-lettered entry carries the entry's fields, so no personal data either.
	w := NewWorker(rdb, WorkerConfig{Consumer: "w"})
	if err := w.ensureGroup(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "w", Streams: []string{intakeStream(d.ID), ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.dead(ctx, d.ID, msgs[0], "test"); err != nil {
		t.Fatal(err)
	}
	dead := rdb.XRange(ctx, deadStream(d.ID), "-", "+").Val()
	if len(dead) != 1 || strings.Contains(fmt.Sprint(dead[0].Values), name) || strings.Contains(fmt.Sprint(dead[0].Values), contact) {
		t.Fatalf("dead letters %v", dead)
	}
}

// The commitment in the entry changes with the name or contact, so the receipt's
// digest detects a changed name while it exists.
func TestCommitmentBindsPersonalData(t *testing.T) {
	a := personal{Name: "张三", Contact: "1", Salt: "s"}
	for _, b := range []personal{{Name: "张四", Contact: "1", Salt: "s"}, {Name: "张三", Contact: "2", Salt: "s"}, {Name: "张三", Contact: "1", Salt: "t"}, {Name: "张三1", Contact: "", Salt: "s"}} {
		if commitment(a) == commitment(b) {
			t.Errorf("commitment(%+v) == commitment(%+v)", a, b)
		}
	}
}

func TestDuplicatesFlaggedPerClient(t *testing.T) {
	now := time.Now()
	s, _, _, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	for _, sub := range []comments.Submission{
		{Body: "同一意见", Client: "a"}, {Body: "同一意见", Client: "a"}, {Body: "同一意见", Client: "b"}, {Body: "同一意见"}, {Body: "同一意见"},
	} {
		sub.DraftID = d.ID
		if _, err := s.Submit(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	cs, _, err := s.Page(ctx, d.ID, "", 10)
	if err != nil || len(cs) != 5 {
		t.Fatalf("page %d %v", len(cs), err)
	}
	var got []bool
	for _, c := range cs {
		got = append(got, c.Duplicate)
	}
	if fmt.Sprint(got) != "[false true false false false]" {
		t.Fatalf("duplicate flags %v", got)
	}
}

func TestDraftCaps(t *testing.T) {
	now := time.Now()
	s, ds, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	if err := ds.SetLimits(ctx, rec.AdminToken, d.ID, drafts.Limits{MaxComments: 2}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: fmt.Sprint("意见", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "第三条", IdempotencyKey: "k3"}); !errors.Is(err, comments.ErrDraftFull) {
		t.Fatalf("third comment: %v, want ErrDraftFull", err)
	}
	if n := rdb.XLen(ctx, intakeStream(d.ID)).Val(); n != 2 || rdb.Exists(ctx, idemKey(d.ID, "k3")).Val() != 0 {
		t.Fatalf("a refused comment left something: %d entries", n)
	}
	if st := s.Stats(); st.Full != 1 || st.Issued != 2 {
		t.Fatalf("stats %+v", st)
	}

	// A byte cap, from the service's default.
	if err := ds.SetLimits(ctx, rec.AdminToken, d.ID, drafts.Limits{}); err != nil {
		t.Fatal(err)
	}
	small := NewComments(rdb, ds, IntakeConfig{MaxBytes: int64(len("意见0意见1")) + 3})
	if _, err := small.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "长一些的意见"}); !errors.Is(err, comments.ErrDraftFull) {
		t.Fatalf("over the byte cap: %v", err)
	}
	off := NewComments(rdb, ds, IntakeConfig{MaxBytes: 1, MaxComments: 1, CapsOff: true})
	if _, err := off.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "上限关闭"}); err != nil {
		t.Fatalf("caps off: %v", err)
	}
}

// TestStallStoresEachCommentOnce stalls Redis (SIGSTOP) for longer than the
// client's read timeout while many clients submit without idempotency keys, as
// the issue measured: go-redis sends the pipelines again, and the comments that
// ran twice must be stored once. Every receipt given is in the stream; every
// entry without a delivered receipt is counted as such.
func TestStallStoresEachCommentOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64, ContextTimeoutEnabled: true,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: 3,
		MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	now := time.Now()
	ds := NewDrafts(rdb, nil)
	d, err := ds.Import(ctx, rec.AdminToken, drafts.Draft{ID: "stall", Title: "停顿", Bureau: "司法局", Kind: drafts.KindRule, Text: ruleText,
		OpensAt: now.Add(-time.Hour), ClosesAt: now.Add(time.Hour), DigestRecipients: []string{"b@example.gov.cn"}})
	if err != nil {
		t.Fatal(err)
	}
	s := NewComments(rdb, ds, IntakeConfig{})
	t.Cleanup(s.Close)

	var mu sync.Mutex
	receipts := map[string]bool{}
	failures := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				r, err := s.Submit(cctx, comments.Submission{DraftID: d.ID, Body: fmt.Sprintf("意见 %d-%d", g, i), Name: "某人"})
				cancel()
				mu.Lock()
				if err == nil {
					if receipts[r.Code] {
						t.Errorf("receipt %s given twice", r.Code)
					}
					receipts[r.Code] = true
				} else {
					failures++
				}
				mu.Unlock()
			}
		}()
	}
	pid := srv.Proc.Pid()
	waitFor(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(receipts) > 200 })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the stall: longer than the read timeout and the submissions' deadline
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	n := 0
	waitFor(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); n++; return len(receipts) > 400 && n > 1 })
	close(stop)
	wg.Wait()

	msgs, err := rdb.XRange(ctx, intakeStream(d.ID), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	inStream := map[string]int{}
	for _, m := range msgs {
		code, _, reason := check(d.ID, m)
		if reason != "" {
			t.Fatalf("entry %s: %s", m.ID, reason)
		}
		inStream[code]++
	}
	doubled := 0
	for code, k := range inStream {
		if k > 1 {
			doubled++
			t.Errorf("code %s stored %d times", code, k)
		}
	}
	for code := range receipts {
		if inStream[code] != 1 {
			t.Errorf("receipt %s given, stored %d times", code, inStream[code])
		}
	}
	undelivered := int64(len(inStream) - len(receipts))
	waitFor(t, 30*time.Second, func() bool { return s.Stats().Undelivered == undelivered })
	counted, _ := rdb.HGet(ctx, countsHash(d.ID), "undelivered").Int64()
	if counted != undelivered {
		t.Errorf("counts hash has %d undelivered, stream says %d", counted, undelivered)
	}
	t.Logf("receipts %d, failures %d, stored without receipt %d, doubled %d", len(receipts), failures, undelivered, doubled)
	if failures == 0 {
		t.Fatal("the stall failed no submission: it did not test anything")
	}
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFullQueueSheds: with the queue full, a comment is refused at once as
// unavailable (503 upstream), not queued into a wait.
func TestFullQueueSheds(t *testing.T) {
	b := newBatcher(nil, 1, 1, nil) // lanes never started: nothing drains the queue
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() { _, err := b.run(ctx, &call{p: &pending{}}); first <- err }()
	waitFor(t, 5*time.Second, func() bool { return len(b.calls) == 1 })
	start := time.Now()
	_, err := b.run(ctx, &call{p: &pending{}})
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second || b.shed.Load() != 1 {
		t.Fatalf("second call: %v after %v, shed %d", err, time.Since(start), b.shed.Load())
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first call: %v", err)
	}
}

// Settled is about a range: what came before a position can be settled while
// later comments still wait for a worker.
func TestSettledUpTo(t *testing.T) {
	now := time.Now()
	s, _, rdb, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	var last string
	for _, b := range []string{"一", "二"} {
		if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := s.Head(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Settled(ctx, d.ID, head); err != nil || ok {
		t.Fatalf("before any worker: %v, %v", ok, err)
	}
	w := NewWorker(rdb, WorkerConfig{Consumer: "w", Batch: 100})
	if _, err := w.round(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: "三"}); err != nil {
		t.Fatal(err)
	}
	if last, err = s.Head(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Settled(ctx, d.ID, head); err != nil || !ok {
		t.Fatalf("up to the first two after a round: %v, %v", ok, err)
	}
	if ok, err := s.Settled(ctx, d.ID, last); err != nil || ok {
		t.Fatalf("up to the third, not yet read: %v, %v", ok, err)
	}
	if ok, err := s.Settled(ctx, d.ID, "0-0"); err != nil || !ok {
		t.Fatalf("an empty range: %v, %v", ok, err)
	}
}
