package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestEmbeddedRedisRestartsAfterCrash: the supervisor brings a killed redis-server
// back on the same address and password, with the data written before the crash
// (appendfsync always).
func TestEmbeddedRedisRestartsAfterCrash(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	e, err := startEmbedded(ctx, Config{DataDir: t.TempDir(), AppendFsync: "always"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	// Authenticated: the restarted server must take the same password.
	rdb := redis.NewClient(e.ClientOptions(4))
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

// TestEmbeddedRedisPassword: the embedded server refuses a client without the
// password and serves one with it; the password is made once, kept 0600 and
// reused by the next start, and it is in no process's argv and not in the log.
func TestEmbeddedRedisPassword(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := startEmbedded(ctx, Config{DataDir: dataDir, AppendFsync: "always"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	pwFile := filepath.Join(dataDir, "redis-password")
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(b))
	if len(pw) < 32 {
		t.Fatalf("password %d characters long", len(pw))
	}

	anon := redis.NewClient(&redis.Options{Addr: e.Addr()})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !redis.HasErrorPrefix(err, "NOAUTH") {
		t.Fatalf("PING without the password: %v, want NOAUTH", err)
	}
	if err := anon.Get(ctx, "x").Err(); err == nil || !redis.HasErrorPrefix(err, "NOAUTH") {
		t.Fatalf("GET without the password: %v, want NOAUTH", err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: e.Addr(), Password: "not-" + pw})
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	rdb := redis.NewClient(e.ClientOptions(2))
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]os.FileMode{
		pwFile:                          0o600,
		filepath.Join(dataDir, "redis"): 0o700 | os.ModeDir,
		filepath.Join(dataDir, "redis", "redis.conf"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	e.mu.Lock()
	pid := e.proc.Pid()
	e.mu.Unlock()
	own, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(own, []byte("redis-server")) {
		t.Fatalf("redis-server's argv not readable: %q %v", own, err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if argv, _ := os.ReadFile(p); bytes.Contains(argv, []byte(pw)) {
			t.Errorf("the password is in %s: %q", p, argv)
		}
	}

	// A second start on the same DATA_DIR takes the same password.
	e.Stop()
	e2, err := startEmbedded(ctx, Config{DataDir: dataDir, AppendFsync: "always"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Stop()
	if b2, _ := os.ReadFile(pwFile); !bytes.Equal(b, b2) {
		t.Fatal("the password changed on the second start")
	}
	rdb2 := redis.NewClient(&redis.Options{Addr: e2.Addr(), Password: pw})
	defer rdb2.Close()
	if v, err := rdb2.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("second start with the first password: %q %v", v, err)
	}

	redisLog, _ := os.ReadFile(filepath.Join(dataDir, "redis", "redis.log"))
	for name, out := range map[string][]byte{"consultd log": logs.Bytes(), "redis-server log": redisLog} {
		if bytes.Contains(out, []byte(pw)) {
			t.Errorf("the password is in the %s", name)
		}
	}
	if !strings.Contains(logs.String(), "embedded redis-server started") {
		t.Errorf("nothing logged: %s", logs.String())
	}
}

// TestEmbeddedRedisFullRefusesWrites: a flood of comments into an embedded
// server with a small maxmemory ends in writes refused with OOM, through a script
// as the intake writes; every comment stored before is still there (nothing
// evicted) and the server still answers.
func TestEmbeddedRedisFullRefusesWrites(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	e, err := startEmbedded(ctx, Config{DataDir: t.TempDir(), AppendFsync: "always", RedisMaxMemory: 4 << 20}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	rdb := redis.NewClient(e.ClientOptions(2))
	defer rdb.Close()
	if v, err := rdb.ConfigGet(ctx, "maxmemory*").Result(); err != nil || v["maxmemory"] != "4194304" || v["maxmemory-policy"] != "noeviction" {
		t.Fatalf("CONFIG GET maxmemory*: %v %v", v, err)
	}
	if err := rdb.Set(ctx, "draft", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}

	script := redis.NewScript(`return redis.call('XADD', KEYS[1], '*', 'c', ARGV[1])`)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	comment := strings.Repeat("建议", 200) // 1200 bytes
	stored, refused := 0, error(nil)
	// 4 MB hold a few thousand such comments: stop well past that.
	for batch := 0; batch < 200 && refused == nil; batch++ {
		cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range 50 {
				script.EvalSha(ctx, p, []string{"intake"}, comment)
			}
			return nil
		})
		for _, c := range cmds {
			// Counted after a refusal too: memory freed in between may let a
			// later write in; what matters is that every write is stored or refused.
			switch err := c.Err(); {
			case err == nil:
				stored++
			case refused == nil:
				refused = err
			}
		}
	}
	if refused == nil || !redis.HasErrorPrefix(refused, "OOM") {
		t.Fatalf("after %d comments: %v, want OOM", stored, refused)
	}
	if stored < 100 {
		t.Fatalf("only %d comments stored before the refusal", stored)
	}
	if got, err := rdb.XLen(ctx, "intake").Result(); err != nil || got != int64(stored) {
		t.Fatalf("the stream holds %d comments (%v), %d were stored", got, err, stored)
	}
	if v, err := rdb.Get(ctx, "draft").Result(); err != nil || v != "kept" {
		t.Fatalf("a key written before the flood: %q %v", v, err)
	}
	if info, err := rdb.Info(ctx, "stats").Result(); err != nil || !strings.Contains(info, "evicted_keys:0\r\n") {
		t.Fatalf("keys evicted: %v\n%s", err, info)
	}
}
