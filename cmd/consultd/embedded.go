package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/internal/redisproc"
)

// embeddedRedis runs and supervises consultd's own redis-server child: the default
// when no REDIS_URL is given. It restarts the child if it dies, on the same port and
// files and with the same password, so clients reconnect to the same data.
type embeddedRedis struct {
	opts redisproc.Options
	log  *slog.Logger

	mu   sync.Mutex
	proc *redisproc.Proc
}

// startEmbedded starts redis-server in cfg.DataDir/redis with cfg's fsync policy
// and memory cap, behind the password kept in cfg.DataDir/redis-password (made on
// the first start). The password is never logged.
func startEmbedded(ctx context.Context, cfg Config, log *slog.Logger) (*embeddedRedis, error) {
	pwFile := filepath.Join(cfg.DataDir, "redis-password")
	pw, err := redisPassword(pwFile)
	if err != nil {
		return nil, err
	}
	o := redisproc.Options{
		Dir: filepath.Join(cfg.DataDir, "redis"), AppendFsync: cfg.AppendFsync,
		Password: pw, MaxMemory: cfg.RedisMaxMemory,
	}
	p, err := redisproc.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	_, port, _ := splitHostPort(p.Addr)
	o.Port = port
	log.Info("embedded redis-server started", "addr", p.Addr, "dir", o.Dir, "appendfsync", o.AppendFsync,
		"maxmemory", formatBytes(o.MaxMemory), "password_file", pwFile)
	return &embeddedRedis{opts: o, log: log, proc: p}, nil
}

// redisPassword reads the embedded server's password from path, or makes one
// there, mode 0600, on the first start. An empty file is taken for one whose
// first write was cut short: the password is not stored in Redis's files, so a
// new one loses nothing.
func redisPassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if pw := strings.TrimSpace(string(b)); pw != "" {
			// Someone may have copied it with looser permissions; the password
			// guards every name and contact.
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("redis password: %w", err)
			}
			return pw, nil
		}
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("redis password: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("redis password: %w", err)
	}
	pw := hex.EncodeToString(b[:])
	// CreateTemp makes the file 0600 before the password is in it; the rename
	// makes a half-written file impossible.
	f, err := os.CreateTemp(filepath.Dir(path), ".redis-password.*")
	if err != nil {
		return "", fmt.Errorf("redis password: %w", err)
	}
	_, err = f.WriteString(pw + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("redis password: %w", err)
	}
	return pw, nil
}

func (e *embeddedRedis) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc.Addr
}

// ClientOptions are the options of a client of the embedded server, with its
// password and a pool of poolSize connections: the one way to the password from
// outside.
func (e *embeddedRedis) ClientOptions(poolSize int) *redis.Options {
	return &redis.Options{Addr: e.Addr(), Password: e.opts.Password, PoolSize: poolSize}
}

// Run restarts the child whenever it exits, until ctx is cancelled.
func (e *embeddedRedis) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		e.mu.Lock()
		done := e.proc.Done()
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-done:
		}
		e.log.Error("embedded redis-server exited; restarting", "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		p, err := redisproc.Start(ctx, e.opts)
		if err != nil {
			e.log.Error("embedded redis-server restart failed", "err", err)
			backoff = min(backoff*2, 10*time.Second)
			// Keep the dead proc so the loop waits on its closed channel and retries.
			continue
		}
		backoff = 100 * time.Millisecond
		e.mu.Lock()
		e.proc = p
		e.mu.Unlock()
		e.log.Info("embedded redis-server restarted", "addr", p.Addr)
	}
}

// Stop shuts the child down cleanly (it finishes its append-only file).
func (e *embeddedRedis) Stop() {
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	p.Stop()
}
