package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"consult/internal/redisproc"
)

// embeddedRedis runs and supervises consultd's own redis-server child: the default
// when no REDIS_URL is given. It restarts the child if it dies, on the same port and
// files, so clients reconnect to the same data.
type embeddedRedis struct {
	opts redisproc.Options
	log  *slog.Logger

	mu   sync.Mutex
	proc *redisproc.Proc
}

func startEmbedded(ctx context.Context, dataDir, fsync string, log *slog.Logger) (*embeddedRedis, error) {
	o := redisproc.Options{Dir: filepath.Join(dataDir, "redis"), AppendFsync: fsync}
	p, err := redisproc.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	_, port, _ := splitHostPort(p.Addr)
	o.Port = port
	log.Info("embedded redis-server started", "addr", p.Addr, "dir", o.Dir, "appendfsync", fsync)
	return &embeddedRedis{opts: o, log: log, proc: p}, nil
}

func (e *embeddedRedis) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc.Addr
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
