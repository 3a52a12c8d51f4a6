package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestEmbeddedRedisRestartsAfterCrash: the supervisor brings a killed redis-server
// back on the same address, with the data written before the crash (appendfsync
// always).
func TestEmbeddedRedisRestartsAfterCrash(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	e, err := startEmbedded(ctx, t.TempDir(), "always", log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	rdb := redis.NewClient(&redis.Options{Addr: e.Addr()})
	defer rdb.Close()
	if err := rdb.Set(ctx, "receipt", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	p.Kill()

	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := rdb.Get(ctx, "receipt").Result()
		if err == nil {
			if v != "kept" {
				t.Fatalf("after restart: %q", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis not back after a crash: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestEmbeddedDefaultSurvivesRestart: consultd with no REDIS_URL runs its own
// redis-server, loads the demo once, and a comment given a receipt is still there
// after consultd stops and starts again on the same DATA_DIR.
func TestEmbeddedDefaultSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	cfg.RedisURL = ""

	base, stop := startConsultd(t, cfg)
	st, out := post(t, base+"/api/v1/drafts/hongya-fazhi-2026/comments", "", "", map[string]any{"body": "建议增加公众参与的内容。"})
	if st != 202 {
		t.Fatalf("comment on the demo: %d %v", st, out)
	}
	code := out["receipt"].(map[string]any)["code"].(string)
	stop()

	base, _ = startConsultd(t, cfg)
	res, err := http.Get(base + "/api/v1/receipts/" + code)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r map[string]any
	_ = json.NewDecoder(res.Body).Decode(&r)
	if res.StatusCode != 200 || r["draft_id"] != "hongya-fazhi-2026" {
		t.Fatalf("receipt after restart: %d %v", res.StatusCode, r)
	}
	res2, err := http.Get(base + "/api/v1/drafts?status=all")
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	var list struct{ Drafts []map[string]any }
	_ = json.NewDecoder(res2.Body).Decode(&list)
	if len(list.Drafts) != 1 {
		t.Fatalf("demo loaded %d times", len(list.Drafts))
	}
	if rr, err := http.Get(base + "/readyz"); err != nil || rr.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", rr, err)
	}
}
