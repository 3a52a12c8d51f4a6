package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jordan-wright/email"

	"consult/bench/internal/child"
	"consult/internal/redisproc"
	"consult/internal/smtptest"
)

// TestChaosShort is the CI version of `make chaos`: the real consultd binary,
// three replicas, one redis-server, 20 s of load with a replica killed and
// restarted, Redis killed and restarted, and Redis stalled past the clients'
// timeout; then the digest must hold every receipt exactly once and nothing twice.
// It writes no RESULTS.md.
func TestChaosShort(t *testing.T) {
	redisBin, err := redisproc.Find("")
	if err != nil {
		t.Fatalf("this test runs a real redis-server: %v (`make deps-test` installs it)", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is needed to build consultd: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "consultd")
	if out, err := exec.Command(goBin, "build", "-o", bin, "consult/cmd/consultd").CombinedOutput(); err != nil {
		t.Fatalf("go build consultd: %v\n%s", err, out)
	}
	mail := smtptest.Start(t, smtptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	const replicas = 3
	cfg := config{
		Consultd: bin, RedisServer: redisBin, Dir: dir, Replicas: replicas, Mail: mail, DigestWait: digestWait,
		Progress: testWriter{t},
		Load: loadConfig{Clients: 8, Rate: 50, For: 20 * time.Second, RetryFor: retryFor, Timeout: attemptTimeout,
			KeyedShare: 0.5, Seed: 1},
		// One fault of each family, early enough that the killed replica's
		// pending comments are claimable (30 s idle) soon after the window closes.
		Plan: []fault{
			{At: 2 * time.Second, Kind: killReplica, Replica: 1, Down: time.Second},
			{At: 6 * time.Second, Kind: killRedis, Down: 500 * time.Millisecond},
			{At: 10 * time.Second, Kind: stallRedis, Down: 7 * time.Second},
		},
	}
	out, err := run(ctx, cfg)
	if err != nil {
		t.Fatalf("the run could not be carried out: %v%s", err, logTails(dir, replicas))
	}
	f := judge(out)
	t.Log(f.text())
	if len(out.Faults) != len(cfg.Plan) {
		t.Fatalf("%d faults injected, %d planned", len(out.Faults), len(cfg.Plan))
	}
	failed := 0
	for _, n := range out.Failed {
		failed += n
	}
	if f.receipts() == 0 || failed == 0 {
		t.Fatalf("%d receipts and %d failed attempts: the load or the faults did not reach the service", f.receipts(), failed)
	}
	if len(f.Failures) > 0 {
		t.Fatalf("chaos run failed:\n  %s%s", strings.Join(f.Failures, "\n  "), logTails(dir, replicas))
	}
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logTails is the end of every replica's log, for a failure message: the test's
// directory is gone once it ends.
func logTails(dir string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("consultd-%d", i)
		fmt.Fprintf(&b, "\n--- %s.log (end):\n%s", name, child.Tail(filepath.Join(dir, name+".log"), 2000))
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	sub := func(marker, key, receipt string) *submission {
		return &submission{Marker: marker, Key: key, Receipt: receipt}
	}
	row := func(code, marker string) digestRow { return digestRow{Code: code, Body: marker + " 建议"} }
	tests := []struct {
		name string
		subs []*submission
		rows []digestRow
		want verdict
	}{
		{
			name: "every receipt once",
			subs: []*submission{sub("chaos-c00-s00000", "", "A"), sub("chaos-c00-s00001", "k", "B")},
			rows: []digestRow{row("A", "chaos-c00-s00000"), row("B", "chaos-c00-s00001")},
			want: verdict{Rows: 2, Receipts: 2},
		},
		{
			name: "a receipt missing",
			subs: []*submission{sub("chaos-c00-s00000", "", "A"), sub("chaos-c00-s00001", "", "B")},
			rows: []digestRow{row("A", "chaos-c00-s00000")},
			want: verdict{Rows: 1, Receipts: 2, Lost: []string{"B"}},
		},
		{
			name: "the same code twice: the pipeline resent after a read timeout",
			subs: []*submission{sub("chaos-c01-s00003", "", "C")},
			rows: []digestRow{row("C", "chaos-c01-s00003"), row("C", "chaos-c01-s00003")},
			want: verdict{Rows: 2, Receipts: 1, DoubledCodes: []string{"C"},
				Doubled: []double{{Marker: "chaos-c01-s00003", Codes: []string{"C", "C"}, Receipt: "C"}}},
		},
		{
			name: "a client without a receipt, stored twice under two codes",
			subs: []*submission{sub("chaos-c01-s00004", "k", "")},
			rows: []digestRow{row("E", "chaos-c01-s00004"), row("D", "chaos-c01-s00004")},
			want: verdict{Rows: 2, DoubledCodes: []string{"D", "E"},
				Doubled: []double{{Marker: "chaos-c01-s00004", Codes: []string{"E", "D"}, Keyed: true}}},
		},
		{
			name: "errors: one stored without receipt, one left nothing",
			subs: []*submission{sub("chaos-c02-s00000", "", ""), sub("chaos-c02-s00001", "", "")},
			rows: []digestRow{row("F", "chaos-c02-s00000")},
			want: verdict{Rows: 1, StoredNoReceipt: 1, LeftNothing: 1},
		},
		{
			name: "a receipt whose comment is stored under another code",
			subs: []*submission{sub("chaos-c02-s00002", "k", "G")},
			rows: []digestRow{row("H", "chaos-c02-s00002")},
			want: verdict{Rows: 1, Receipts: 1, Lost: []string{"G"}},
		},
		{
			name: "rows no submission explains",
			subs: nil,
			rows: []digestRow{{Code: "I", Body: "no marker"}, row("J", "chaos-c09-s00009")},
			want: verdict{Rows: 2, Foreign: []string{"I", "[J] (marker chaos-c09-s00009, never sent)"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check(tt.subs, tt.rows)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("check =\n  %+v\nwant\n  %+v", got, tt.want)
			}
			if got.ok() != (len(tt.want.Lost) == 0 && len(tt.want.Doubled) == 0 && len(tt.want.Foreign) == 0) {
				t.Errorf("ok() = %v", got.ok())
			}
		})
	}
}

func TestDoubleString(t *testing.T) {
	tests := []struct {
		d    double
		want string
	}{
		{double{Codes: []string{"C", "C"}, Receipt: "C"}, "C ×2 (no key, receipt C given)"},
		{double{Codes: []string{"E", "D", "E"}, Keyed: true}, "D+E ×3 (with a key, no receipt given)"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestDigestCSV reads a digest as jordan-wright/email, consult's sender, writes
// it, with notify's CSV header.
func TestDigestCSV(t *testing.T) {
	e := email.NewEmail()
	e.From = "consult@chaos.example.gov.cn"
	e.To = []string{recipients[0]}
	e.Subject = "【意见汇总】故障演练用规章草案"
	e.Text = []byte("正文\n")
	csv := "\xEF\xBB\xBF" + "回执编号 receipt_code,收到时间 received_at,章节锚点 section_anchor,章节 section_label,类别 category," +
		"姓名 name,联系方式 contact,同意公开姓名 publish_name,意见 body,校验值 sha256\r\n" +
		"K7-ABCD,2026-12-01T10:00:00+08:00,a1,第一条,individual,张三,zs@example.cn,false,\"chaos-c00-s00001 建议, 细化\",ff\r\n"
	if _, err := e.Attach(strings.NewReader(csv), draftID+"-comments.csv", "text/csv; charset=utf-8"); err != nil {
		t.Fatal(err)
	}
	raw, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d := readDigest(smtptest.Message{To: e.To, Data: raw})
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	want := []digestRow{{Code: "K7-ABCD", Body: "chaos-c00-s00001 建议, 细化"}}
	if !reflect.DeepEqual(d.Rows, want) {
		t.Errorf("rows = %q, want %q", d.Rows, want)
	}

	e.Attachments = nil
	if d := readDigest(smtptest.Message{To: e.To, Data: mustBytes(t, e)}); d.Err == nil || !strings.Contains(d.Err.Error(), "no *-comments.csv") {
		t.Errorf("a digest without the CSV: err = %v", d.Err)
	}
}

func mustBytes(t *testing.T, e *email.Email) []byte {
	t.Helper()
	b, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlan: the faults never overlap, leave the end of the load calm, include
// every family once the load is long enough, and stall longer than a client waits.
func TestPlan(t *testing.T) {
	if stallMin <= attemptTimeout {
		t.Fatalf("stallMin %v must exceed the clients' timeout %v", stallMin, attemptTimeout)
	}
	for _, d := range []time.Duration{30 * time.Second, 60 * time.Second, 5 * time.Minute} {
		t.Run(d.String(), func(t *testing.T) {
			p := plan(d, 3, rand.New(rand.NewPCG(7, 0)))
			kinds := map[faultKind]int{}
			end := time.Duration(0)
			for i, f := range p {
				if f.At < end {
					t.Errorf("fault %d at %v starts before the one before ends (%v)", i, f.At, end)
				}
				end = f.At + f.Down + faultSettle
				kinds[f.Kind]++
				if f.Kind == stallRedis && f.Down <= attemptTimeout {
					t.Errorf("stall of %v does not outlast the clients' timeout", f.Down)
				}
				if f.Kind == killReplica && (f.Replica < 0 || f.Replica >= 3) {
					t.Errorf("replica %d", f.Replica)
				}
			}
			if end > d-faultCalm {
				t.Errorf("the last fault ends at %v, into the calm end of a %v load", end, d)
			}
			want := []faultKind{killReplica, killRedis, stallRedis}
			if d >= time.Minute {
				want = faultKinds
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("no %s in %+v", k, p)
				}
			}
		})
	}
}

// TestJudgeDigests: exactly one readable digest per recipient, no other
// recipient, and with no digest at all every receipt is lost.
func TestJudgeDigests(t *testing.T) {
	subs := []*submission{{Marker: "chaos-c00-s00000", Receipt: "A"}}
	good := func(to string) digest {
		return digest{To: []string{to}, Rows: []digestRow{{Code: "A", Body: "chaos-c00-s00000 建议"}}}
	}
	tests := []struct {
		name    string
		digests []digest
		want    []string // failures, as substrings
	}{
		{name: "one each", digests: []digest{good(recipients[0]), good(recipients[1])}},
		{name: "one twice", digests: []digest{good(recipients[0]), good(recipients[1]), good(recipients[1])},
			want: []string{recipients[1] + " got 2 digests"}},
		{name: "one missing", digests: []digest{good(recipients[0])}, want: []string{recipients[1] + " got 0 digests"}},
		{name: "a stranger", digests: []digest{good(recipients[0]), good(recipients[1]), good("x@example.org")},
			want: []string{"went to x@example.org"}},
		{name: "none", want: []string{recipients[1] + " got 0", recipients[0] + " got 0", "lost: 1 receipts"}},
		{name: "unreadable", digests: []digest{good(recipients[0]), {To: []string{recipients[1]}, Err: fmt.Errorf("no CSV")}},
			want: []string{"no CSV"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := judge(&outcome{Subs: subs, Digests: tt.digests})
			if len(f.Failures) != len(tt.want) {
				t.Fatalf("failures %q, want %d like %q", f.Failures, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(f.Failures, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("failures %q lack %q", f.Failures, w)
				}
			}
		})
	}
}
