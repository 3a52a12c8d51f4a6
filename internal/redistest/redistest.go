// Package redistest starts a real redis-server for tests, on a free port in a
// temporary directory, and stops it when the test ends.
package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"consult/internal/redisproc"
)

// Server is a redis-server owned by one test.
type Server struct {
	Addr string
	Proc *redisproc.Proc
}

// Start starts redis-server with append-only persistence (appendfsync always) in
// t.TempDir(). It fails the test, naming the make target that installs redis-server,
// when the binary is missing: a test that needs a server never skips.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, redisproc.Options{})
}

// StartWith is Start with options; Dir defaults to t.TempDir().
func StartWith(t testing.TB, o redisproc.Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := redisproc.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("redistest: %v (run `make deps` to install redis-server)", err)
	}
	t.Cleanup(p.Stop)
	return &Server{Addr: p.Addr, Proc: p}
}

// Client returns a client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
