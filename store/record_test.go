package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// redisNow is the Redis server's clock, to the millisecond as events carry it.
func redisNow(t *testing.T, rdb redis.UniversalClient) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.Truncate(time.Millisecond).UTC()
}

// rawRecord is every stored element of a record, as bytes.
func rawRecord(t *testing.T, rdb redis.UniversalClient, draftID string) []string {
	t.Helper()
	v, err := rdb.LRange(context.Background(), recordList(draftID), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func allEvents(t *testing.T, rs *Records, scope rec.Scope) []rec.Event {
	t.Helper()
	var out []rec.Event
	var after int64
	for {
		page, next, err := rs.Page(context.Background(), scope, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == 0 {
			return out
		}
		after = next
	}
}

// TestCreatePublishes: an opening left out, or a little past, is the Redis
// server's now, returned and recorded; further past is refused and leaves
// nothing; a future one is a scheduled opening.
func TestCreatePublishes(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	ds, rs := NewDrafts(rdb, nil), NewRecords(rdb)
	now := time.Now()
	for _, tc := range []struct {
		name          string
		opens, closes time.Time
		wantErr       string // the field of the *drafts.ValidationError
		wantNow       bool   // published now, by Redis's clock
		wantRequested bool   // the asked-for opening is recorded beside it
	}{
		{name: "absent", closes: now.Add(24 * time.Hour), wantNow: true},
		{name: "a minute past", opens: now.Add(-time.Minute), closes: now.Add(24 * time.Hour), wantNow: true, wantRequested: true},
		{name: "an hour past", opens: now.Add(-time.Hour), closes: now.Add(24 * time.Hour), wantErr: "opens_at"},
		{name: "scheduled", opens: now.Add(time.Hour), closes: now.Add(24 * time.Hour)},
		{name: "closes past", closes: now.Add(-time.Second), wantErr: "closes_at"},
		{name: "closes before opening", opens: now.Add(2 * time.Hour), closes: now.Add(time.Hour), wantErr: "closes_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			before := redisNow(t, rdb)
			d, err := ds.Create(ctx, rec.User("u7"), valid(id, tc.opens, tc.closes))
			after := redisNow(t, rdb)
			if tc.wantErr != "" {
				var ve *drafts.ValidationError
				if !errors.As(err, &ve) || ve.Fields[tc.wantErr].Key == "" {
					t.Fatalf("Create = %v, want a message for %s", err, tc.wantErr)
				}
				if _, err := ds.Get(ctx, id); !errors.Is(err, drafts.ErrNotFound) {
					t.Fatalf("refused draft stored: %v", err)
				}
				if raw := rawRecord(t, rdb, id); len(raw) != 0 {
					t.Fatalf("refused draft recorded: %q", raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.CreatedAt.Before(before) || d.CreatedAt.After(after) {
				t.Fatalf("CreatedAt %v not by Redis's clock (%v to %v)", d.CreatedAt, before, after)
			}
			wantOpens := tc.opens.UTC().Truncate(time.Millisecond)
			if tc.wantNow {
				wantOpens = d.CreatedAt
			}
			if !d.OpensAt.Equal(wantOpens) {
				t.Fatalf("OpensAt = %v, want %v", d.OpensAt, wantOpens)
			}
			got, err := ds.Get(ctx, id)
			if err != nil || !got.OpensAt.Equal(d.OpensAt) || !got.CreatedAt.Equal(d.CreatedAt) || !got.ClosesAt.Equal(d.ClosesAt) {
				t.Fatalf("Get = %v, %v, %v, %v; want the times Create returned", got.OpensAt, got.CreatedAt, got.ClosesAt, err)
			}
			es := allEvents(t, rs, rec.DraftScope(id))
			if len(es) != 2 || es[0].Action != rec.DraftCreated || es[1].Action != rec.DraftPublished {
				t.Fatalf("record = %+v", es)
			}
			for i, e := range es {
				if e.Seq != int64(i+1) || !e.At.Equal(d.CreatedAt) || e.Actor != rec.User("u7") || e.Intake != "0-0" {
					t.Errorf("event %d = %+v", i, e)
				}
			}
			pub := es[1].Data
			if pub["opens_at"] != d.OpensAt.UnixMilli() || pub["closes_at"] != d.ClosesAt.UnixMilli() || pub["opens_now"] != tc.wantNow {
				t.Errorf("published %v", pub)
			}
			if _, ok := pub["requested_opens_at"]; ok != tc.wantRequested {
				t.Errorf("published %v: requested_opens_at recorded: %v", pub, ok)
			}
			c := es[0].Data
			if c["title"] != "办法" || c["ref"] != d.Ref || c["sections"] != int64(2) || c["text_sha256"] == "" ||
				!slices.Equal(c["digest_recipients"].([]string), d.DigestRecipients) {
				t.Errorf("created %v", c)
			}
		})
	}
}

// TestRecordEvents: each state change appears as one event, in order, with its
// actor and Redis's time; comments add none, and the next event names the last
// one (its intake position).
func TestRecordEvents(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	ds, rs := NewDrafts(rdb, nil), NewRecords(rdb)
	cs := NewComments(rdb, ds, IntakeConfig{})
	t.Cleanup(cs.Close)
	lastEntry := func() string {
		m, err := rdb.XRevRangeN(ctx, intakeStream("water"), "+", "-", 1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			return "0-0"
		}
		return m[0].ID
	}
	type want struct {
		action rec.Action
		actor  rec.Actor
		data   rec.Data // the members to check
	}
	steps := []struct {
		name string
		do   func() error
		want []want
	}{
		{"create", func() error {
			_, err := ds.Create(ctx, rec.AdminToken, valid("water", time.Time{}, time.Now().Add(time.Hour)))
			return err
		}, []want{{rec.DraftCreated, rec.AdminToken, rec.Data{"title": "办法"}}, {rec.DraftPublished, rec.AdminToken, rec.Data{"opens_now": true}}}},
		{"comments", func() error {
			for range 3 {
				if _, err := cs.Submit(ctx, comments.Submission{DraftID: "water", Body: "建议", Name: "张三", Contact: "13800000000"}); err != nil {
					return err
				}
			}
			return nil
		}, nil},
		{"limits", func() error {
			return ds.SetLimits(ctx, rec.Token("t1"), "water", drafts.Limits{PoWBits: 18, SubmitsPerHour: 100})
		}, []want{{rec.DraftLimitsChanged, rec.Token("t1"), rec.Data{"pow_bits": int64(18), "submits_per_hour": int64(100), "max_comments": int64(0)}}}},
		{"limits refused", func() error {
			if err := ds.SetLimits(ctx, rec.User("u1"), "water", drafts.Limits{PoWBits: 99}); err == nil {
				return errors.New("bad limits taken")
			}
			if err := ds.SetLimits(ctx, rec.User("u1"), "nowhere", drafts.Limits{}); !errors.Is(err, drafts.ErrNotFound) {
				return fmt.Errorf("limits of no draft: %v", err)
			}
			return nil
		}, nil},
		{"limits again", func() error {
			return ds.SetLimits(ctx, rec.User("u1"), "water", drafts.Limits{})
		}, []want{{rec.DraftLimitsChanged, rec.User("u1"), rec.Data{"pow_bits": int64(0)}}}},
	}
	var seen []rec.Event
	for _, st := range steps {
		before := redisNow(t, rdb)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after, intake := redisNow(t, rdb), lastEntry()
		es := allEvents(t, rs, rec.DraftScope("water"))
		if !slices.EqualFunc(es[:len(seen)], seen, func(a, b rec.Event) bool { ha, _ := a.Hash(); hb, _ := b.Hash(); return ha == hb }) {
			t.Fatalf("%s: earlier events changed", st.name)
		}
		added := es[len(seen):]
		if len(added) != len(st.want) {
			t.Fatalf("%s: %d events, want %d: %+v", st.name, len(added), len(st.want), added)
		}
		for i, w := range st.want {
			e := added[i]
			if e.Seq != int64(len(seen)+i+1) || e.Action != w.action || e.Actor != w.actor || e.Intake != intake ||
				e.At.Before(before) || e.At.After(after) {
				t.Errorf("%s: event %+v, want %v by %v, intake %s, at %v to %v", st.name, e, w.action, w.actor, intake, before, after)
			}
			for k, v := range w.data {
				if e.Data[k] != v {
					t.Errorf("%s: %s = %v, want %v", st.name, k, e.Data[k], v)
				}
			}
		}
		seen = es
	}
	// No personal data in the record: the commenter's name and contact went to
	// the intake's personal-data hash, never here.
	for _, raw := range rawRecord(t, rdb, "water") {
		if strings.Contains(raw, "张三") || strings.Contains(raw, "13800000000") {
			t.Fatalf("personal data in the record: %s", raw)
		}
	}
	// Pages: after and limit, and next only while more follow.
	page, next, err := rs.Page(ctx, rec.DraftScope("water"), 1, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 2 || next != 3 {
		t.Fatalf("Page(1, 2) = %d events, next %d, %v", len(page), next, err)
	}
	page, next, err = rs.Page(ctx, rec.DraftScope("water"), 3, 100)
	if err != nil || len(page) != 1 || page[0].Seq != 4 || next != 0 {
		t.Fatalf("Page(3, 100) = %d events, next %d, %v", len(page), next, err)
	}
	if page, _, err := rs.Page(ctx, rec.DraftScope("nowhere"), 0, 10); err != nil || len(page) != 0 {
		t.Fatalf("record of no draft = %v, %v", page, err)
	}
	for _, bad := range [][2]int64{{-1, 10}, {0, 0}, {0, MaxPage + 1}} {
		if _, _, err := rs.Page(ctx, rec.DraftScope("water"), bad[0], bad[1]); !errors.Is(err, rec.ErrInvalid) {
			t.Errorf("Page(%d, %d) = %v", bad[0], bad[1], err)
		}
	}
	// A damaged element is reported, not shown.
	rdb.RPush(ctx, recordList("water"), `{"action":"draft.withdrawn"}`)
	if _, _, err := rs.Page(ctx, rec.DraftScope("water"), 4, 10); !errors.Is(err, rec.ErrNotCanonical) {
		t.Fatalf("damaged record: %v", err)
	}
}

// TestRecordTwoReplicas: two replicas (two stores, two connections) changing one
// consultation at once keep one total order: sequence numbers 1…n with no gap
// and no repeat, times that never go back, every change recorded once.
func TestRecordTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	testTwoReplicas(t, srv.Client(t), srv.Client(t))
}

// TestRecordCluster: the same on a three-node Cluster, where a script touching
// keys of two slots would fail.
func TestRecordCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	testTwoReplicas(t, c.Client(t), c.Client(t))
}

func testTwoReplicas(t *testing.T, a, b redis.UniversalClient) {
	ctx := context.Background()
	stores := []*Drafts{NewDrafts(a, nil), NewDrafts(b, nil)}
	if _, err := stores[0].Create(ctx, rec.AdminToken, valid("both", time.Time{}, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	const each = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for r, s := range stores {
		for i := range each {
			wg.Go(func() {
				errs <- s.SetLimits(ctx, rec.User(fmt.Sprintf("r%d", r)), "both", drafts.Limits{SubmitsPerHour: i + 1})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es := allEvents(t, NewRecords(b), rec.DraftScope("both"))
	if len(es) != 2+2*each {
		t.Fatalf("%d events, want %d", len(es), 2+2*each)
	}
	seen := map[string]bool{}
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if i > 0 && e.At.Before(es[i-1].At) {
			t.Fatalf("event %d at %v, before event %d at %v", e.Seq, e.At, es[i-1].Seq, es[i-1].At)
		}
		if e.Action == rec.DraftLimitsChanged {
			k := fmt.Sprint(e.Actor, e.Data["submits_per_hour"])
			if seen[k] {
				t.Fatalf("%s recorded twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != 2*each {
		t.Fatalf("%d distinct changes recorded, want %d", len(seen), 2*each)
	}
}

// TestRecordAppendChecks: record_append refuses a template that does not fit
// its record before writing anything, and appends to the staff record without
// an intake position.
func TestRecordAppendChecks(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	script := RecordedScript(`
local intake = false
if KEYS[2] then intake = KEYS[2] end
return record_append(KEYS[1], intake, record_now(), ARGV[1])
`)
	draftTpl, _ := template(rec.Pending(rec.DraftScope("d1"), rec.AdminToken, rec.DraftWithdrawn, rec.Data{"reason": "x"}))
	staffTpl, _ := template(rec.Pending(rec.Staff, rec.User("admin"), rec.UserCreated, rec.Data{"user": "u2", "roles": []string{"editor"}}))
	events, intake := DraftRecordKeys("d1")
	for name, run := range map[string]func() error{
		"draft template without intake": func() error { return script.Run(ctx, rdb, []string{events}, draftTpl).Err() },
		"staff template with intake": func() error {
			return script.Run(ctx, rdb, []string{StaffRecordKey(), "consult:{_staff}:x"}, staffTpl).Err()
		},
		"not a template": func() error { return script.Run(ctx, rdb, []string{events, intake}, `{"v":1}`).Err() },
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "record_append") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n, _ := rdb.LLen(ctx, events).Result(); n != 0 {
		t.Fatalf("refused templates wrote %d events", n)
	}
	if n, _ := rdb.LLen(ctx, StaffRecordKey()).Result(); n != 0 {
		t.Fatalf("refused templates wrote %d staff events", n)
	}
	for want := int64(1); want <= 2; want++ {
		if seq, err := script.Run(ctx, rdb, []string{StaffRecordKey()}, staffTpl).Int64(); err != nil || seq != want {
			t.Fatalf("staff append = %d, %v", seq, err)
		}
	}
	es := allEvents(t, NewRecords(rdb), rec.Staff)
	if len(es) != 2 || es[1].Seq != 2 || es[1].Intake != "" || es[1].Action != rec.UserCreated || !slices.Equal(es[1].Data["roles"].([]string), []string{"editor"}) {
		t.Fatalf("staff record = %+v", es)
	}
	// A draft named "staff" has a record of its own.
	if k, _ := DraftRecordKeys("staff"); k == StaffRecordKey() {
		t.Fatal("a draft named staff shares the staff record")
	}
}

// TestNothingChangesARecord reads every non-test Go file of the module (Lua
// scripts included) and fails on any command that could change or remove an
// element of a list, and on any use of a record's key outside the few places
// that pass it to record_append or read it: a record is only ever appended to.
func TestNothingChangesARecord(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Lua commands ('LSET', "ltrim", …) and go-redis methods (.LTrim(, …).
	mutators := regexp.MustCompile(`(?i)['"](lset|lrem|ltrim|lpop|rpop|lmove|blmove|linsert|rpoplpush|brpoplpush|lmpop|blmpop|blpop|brpop)['"]|\.(LSet|LRem|LTrim|LPop|LPopCount|RPop|RPopCount|LMove|BLMove|LInsert|LInsertBefore|LInsertAfter|RPopLPush|BRPopLPush|LMPop|BLMPop|BLPop|BRPop)\(`)
	keyUse := regexp.MustCompile(`\b(recordList|staffRecord|DraftRecordKeys|StaffRecordKey)\b`)
	allowed := map[string]bool{
		"store/keys.go": true, "store/record.go": true, // where the keys are made, and the records read
		"store/drafts.go": true, "notify/scheduler.go": true, // a consultation's changes and its digests
		// The staff's changes: users, bureaus, tokens, and an account's lockout.
		"store/accounts.go": true, "store/sessions.go": true,
	}
	var checked int
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		checked++
		for _, m := range mutators.FindAllString(string(b), -1) {
			t.Errorf("%s: %s: a command that changes a list", rel, m)
		}
		if !allowed[rel] && keyUse.Match(b) {
			t.Errorf("%s uses a record's key: only record_append writes to a record", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d files checked", checked)
	}
}
