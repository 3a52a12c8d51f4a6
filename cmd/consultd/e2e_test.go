package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"consult/internal/redistest"
	"consult/internal/smtptest"
)

// startConsultd runs the real wiring (run) against the servers cfg names and
// returns its base URL and a stop function; it stops at the end of the test too.
func startConsultd(t *testing.T, cfg Config) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- run(ctx, cfg, log, func(a string) { addrc <- a }) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consultd returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("consultd did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-addrc:
		return "http://" + a, stop
	case err := <-done:
		t.Fatalf("consultd did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("consultd did not start within 20s")
	}
	return "", stop
}

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{Addr: "127.0.0.1:0", MailFrom: "consult@test.consult.local", DataDir: t.TempDir(),
		TimeZone: "Asia/Shanghai", AdminToken: "e2e-token", AppendFsync: "always", Workers: 2,
		RedisPoolSize: 64, DigestRetry: 200 * time.Millisecond, BaseURL: "http://consult.test", LogLevel: "warn",
		LimitsOff: true} // every comment of the load comes from 127.0.0.1
}

func post(t *testing.T, url, token, idem string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// TestEndToEnd: a draft closing a few seconds ahead; a few hundred comments
// submitted concurrently over HTTP, some retried with the same Idempotency-Key;
// late ones refused with 409; after the deadline each recipient has exactly one
// digest whose CSV holds every issued receipt exactly once. The SMTP server refuses
// the first attempts, so the digest goes through the retry path too.
func TestEndToEnd(t *testing.T) {
	rs := redistest.Start(t)
	mail := smtptest.Start(t, smtptest.Options{FailFirst: 2})
	cfg := testConfig(t)
	cfg.RedisURL = "redis://" + rs.Addr
	cfg.SMTPURL = "smtp://" + mail.Addr
	base, _ := startConsultd(t, cfg)

	closes := time.Now().Add(6 * time.Second) // room for a slow machine: a comment refused as late fails the test
	recipients := []string{"office@bureau.example.gov.cn", "director@bureau.example.gov.cn"}
	st, out := post(t, base+"/api/v1/drafts", cfg.AdminToken, "", map[string]any{
		"id": "e2e-plan", "title": "端到端测试实施方案", "bureau": "测试局", "kind": "other", "summary": "起草说明",
		"text":     "一、总体要求\n（一）指导思想。依法行政。\n（二）主要目标。建成法治政府。\n二、保障措施\n（三）加强领导。\n",
		"opens_at": time.Now().Add(-time.Minute).Format(time.RFC3339Nano), "closes_at": closes.Format(time.RFC3339Nano),
		"digest_recipients": recipients,
	})
	if st != 201 {
		t.Fatalf("create draft: %d %v", st, out)
	}
	var anchors []string
	for _, s := range out["sections"].([]any) {
		anchors = append(anchors, s.(map[string]any)["anchor"].(string))
	}

	const n = 300
	var (
		mu       sync.Mutex
		receipts = map[string]int{} // code -> times returned
		late     int
		wg       sync.WaitGroup
		work     = make(chan int)
	)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := map[string]any{"section": anchors[i%len(anchors)], "body": fmt.Sprintf("第%d条意见：建议细化。", i),
					"name": fmt.Sprintf("市民%d", i), "contact": fmt.Sprintf("1380000%04d", i), "category": "individual"}
				idem := fmt.Sprintf("e2e-%d", i)
				tries := 1
				if i%5 == 0 {
					tries = 2 // a client retrying after a lost response
				}
				for k := 0; k < tries; k++ {
					st, out := post(t, base+"/api/v1/drafts/e2e-plan/comments", "", idem, body)
					mu.Lock()
					switch st {
					case 202:
						receipts[out["receipt"].(map[string]any)["code"].(string)]++
					case 409:
						late++
					default:
						t.Errorf("comment %d: %d %v", i, st, out)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(receipts) != n {
		t.Fatalf("%d distinct receipts for %d comments (%d refused as late)", len(receipts), n, late)
	}
	for code, k := range receipts {
		if k != 1 && k != 2 {
			t.Fatalf("receipt %s returned %d times", code, k)
		}
	}

	// After the deadline: refused with 409 window_closed, never given a receipt.
	time.Sleep(time.Until(closes) + 100*time.Millisecond)
	for i := 0; i < 5; i++ {
		st, out := post(t, base+"/api/v1/drafts/e2e-plan/comments", "", "", map[string]any{"body": "迟到的意见"})
		if st != 409 || out["code"] != "window_closed" {
			t.Fatalf("late comment: %d %v", st, out)
		}
	}

	msgs := mail.WaitFor(t, len(recipients), 60*time.Second)
	time.Sleep(1500 * time.Millisecond) // a scheduler tick or so, to catch a second send
	msgs = mail.Messages()
	if len(msgs) != len(recipients) {
		t.Fatalf("%d digests for %d recipients", len(msgs), len(recipients))
	}
	if mail.Refused() < 2 {
		t.Fatalf("SMTP refused %d attempts, want the first 2", mail.Refused())
	}
	got := map[string]bool{}
	for _, m := range msgs {
		if len(m.To) != 1 || got[m.To[0]] {
			t.Fatalf("envelope recipients %v", m.To)
		}
		got[m.To[0]] = true
		p := m.Parse(t)
		if !strings.Contains(p.Subject, "端到端测试实施方案") {
			t.Errorf("subject %q lacks the title", p.Subject)
		}
		if p.Header.Get("Message-Id") == "" {
			t.Error("no Message-ID")
		}
		var csvData []byte
		for _, a := range p.Attachments {
			if strings.HasSuffix(a.Filename, ".csv") {
				csvData = a.Data
			}
		}
		if !bytes.HasPrefix(csvData, []byte("\xef\xbb\xbf")) {
			t.Fatalf("CSV missing or without BOM (%d bytes)", len(csvData))
		}
		rows, err := csv.NewReader(bytes.NewReader(csvData[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		codeCol := -1
		for i, h := range rows[0] {
			if strings.Contains(strings.ToLower(h), "code") || strings.Contains(h, "回执") {
				codeCol = i
				break
			}
		}
		if codeCol < 0 {
			t.Fatalf("no receipt code column in %v", rows[0])
		}
		seen := map[string]bool{}
		for _, r := range rows[1:] {
			code := r[codeCol]
			if seen[code] {
				t.Fatalf("receipt %s twice in the CSV", code)
			}
			if receipts[code] == 0 {
				t.Fatalf("CSV holds %s, which no one was given", code)
			}
			seen[code] = true
		}
		if len(seen) != len(receipts) {
			t.Fatalf("CSV has %d comments, %d receipts were issued", len(seen), len(receipts))
		}
		if !strings.Contains(p.Text, "13800000001") {
			t.Error("the bureau's copy lacks contact details")
		}
	}
	for _, r := range recipients {
		if !got[r] {
			t.Errorf("no digest for %s", r)
		}
	}

	// Every receipt now reads accepted.
	for code := range receipts {
		res, err := http.Get(base + "/api/v1/receipts/" + code)
		if err != nil {
			t.Fatal(err)
		}
		var rs map[string]any
		_ = json.NewDecoder(res.Body).Decode(&rs)
		res.Body.Close()
		if rs["status"] != "accepted" {
			t.Fatalf("receipt %s: %v", code, rs)
		}
		break
	}
}

// TestEndToEndOnCluster runs the intake, the workers and the digest against a real
// three-node Redis Cluster: any script or command touching keys of two slots fails
// there, so this is the proof that every draft's keys share its hash tag.
func TestEndToEndOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	mail := smtptest.Start(t, smtptest.Options{})
	cfg := testConfig(t)
	cfg.RedisURL = cl.URL()
	cfg.SMTPURL = "smtp://" + mail.Addr
	base, _ := startConsultd(t, cfg)

	closes := time.Now().Add(3 * time.Second)
	var codes []string
	for _, id := range []string{"cluster-a", "cluster-b", "cluster-c"} {
		st, out := post(t, base+"/api/v1/drafts", cfg.AdminToken, "", map[string]any{
			"id": id, "title": "集群测试 " + id, "bureau": "测试局", "kind": "normative",
			"text":     "第一条 总则。\n第二条 附则。\n",
			"opens_at": time.Now().Add(-time.Minute).Format(time.RFC3339Nano), "closes_at": closes.Format(time.RFC3339Nano),
			"digest_recipients": []string{"office@" + id + ".example.gov.cn"},
		})
		if st != 201 {
			t.Fatalf("create %s: %d %v", id, st, out)
		}
		for i := 0; i < 20; i++ {
			st, out := post(t, base+"/api/v1/drafts/"+id+"/comments", "", fmt.Sprintf("%s-%d", id, i%15), map[string]any{"body": fmt.Sprintf("意见%d", i%15)})
			if st != 202 {
				t.Fatalf("comment: %d %v", st, out)
			}
			codes = append(codes, out["receipt"].(map[string]any)["code"].(string))
		}
	}
	distinct := map[string]bool{}
	for _, c := range codes {
		distinct[c] = true
	}
	if len(distinct) != 45 {
		t.Fatalf("%d distinct receipts, want 45 (15 per draft, retries deduplicated)", len(distinct))
	}
	// An interim digest while the window is open, asked for by the bureau.
	if st, out := post(t, base+"/api/v1/drafts/cluster-a/digests", "", "", nil); st != 401 {
		t.Fatalf("interim digest without token: %d %v", st, out)
	}
	if st, out := post(t, base+"/api/v1/drafts/cluster-a/digests", cfg.AdminToken, "", nil); st != 202 || out["job"] == "" {
		t.Fatalf("interim digest: %d %v", st, out)
	}
	msgs := mail.WaitFor(t, 4, 30*time.Second) // the interim one, then one final digest per draft
	interim := 0
	for _, m := range msgs {
		p := m.Parse(t)
		if strings.Contains(p.Subject, "中期") {
			interim++
			continue
		}
		for _, a := range p.Attachments {
			if rows, err := csv.NewReader(bytes.NewReader(a.Data[3:])).ReadAll(); err != nil || len(rows) != 16 {
				t.Fatalf("digest to %v: %d CSV rows (%v), want 15 and a header", m.To, len(rows), err)
			}
		}
	}
	if interim != 1 {
		t.Fatalf("%d interim digests, want 1", interim)
	}
	// The SMTP server has the fourth message before the sender's Send returns
	// and counts it: read the metrics until the count catches up.
	var metrics []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if bytes.Contains(metrics, []byte("consult_digests_sent_total 4\n")) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"consult_comments_receipts_issued_total 45\n", "consult_digests_sent_total 4\n", "consult_queue_lag_seconds "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	for c := range distinct {
		res, err := http.Get(base + "/api/v1/receipts/" + c)
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		_ = json.NewDecoder(res.Body).Decode(&r)
		res.Body.Close()
		if r["status"] != "accepted" {
			t.Fatalf("receipt %s: %v", c, r)
		}
	}
}
