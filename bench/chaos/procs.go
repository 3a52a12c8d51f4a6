package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"

	"consult/bench/internal/child"
	"consult/internal/redisproc"
)

// redisServer is the one redis-server every replica shares. The faults stop it
// and start it again on the same port and directory, so the replicas'
// REDIS_URL stays right and the append-only file carries every acknowledged
// write across the restart (appendfsync always).
type redisServer struct {
	bin, dir string
	port     int

	mu      sync.Mutex
	proc    *redisproc.Proc // nil while down
	pid     int
	stalled bool
}

func newRedisServer(bin, dir string) (*redisServer, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	return &redisServer{bin: bin, dir: dir, port: port}, nil
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and learns its pid, which the stall needs.
func (s *redisServer) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("redis-server is already running")
	}
	p, err := redisproc.Start(ctx, redisproc.Options{Dir: s.dir, Port: s.port, AppendFsync: "always", Binary: s.bin})
	if err != nil {
		return err
	}
	pid, err := serverPID(ctx, p.Addr)
	if err != nil {
		p.Kill()
		return err
	}
	s.proc, s.pid = p, pid
	return nil
}

// serverPID asks the server for its process id: redisproc.Proc does not expose
// the one it started, and the server it answers for is the one on our port.
func serverPID(ctx context.Context, addr string) (int, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxRetries: -1})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Errorf("redis-server: INFO server: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("redis-server: INFO server has no process_id")
}

// kill stops the server as a crash would (SIGKILL), or, when graceful, with
// SIGTERM, which lets it finish writing its append-only file.
func (s *redisServer) kill(graceful bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.resumeLocked() // a stopped process never acts on SIGTERM
	if graceful {
		s.proc.Stop()
	} else {
		s.proc.Kill()
	}
	s.proc, s.pid = nil, 0
}

// stall freezes the server with SIGSTOP: it keeps its connections and the kernel
// keeps accepting new ones, but nothing is answered until resume. That is what
// makes a client's read time out while its command is still in the socket, to
// run once the server wakes up.
func (s *redisServer) stall() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return errors.New("redis-server is not running")
	}
	if err := syscall.Kill(s.pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("redis-server: SIGSTOP: %w", err)
	}
	s.stalled = true
	return nil
}

func (s *redisServer) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumeLocked()
}

func (s *redisServer) resumeLocked() {
	if s.stalled && s.pid != 0 {
		_ = syscall.Kill(s.pid, syscall.SIGCONT)
	}
	s.stalled = false
}

// stop ends the server for good, at the end of the run or on Ctrl-C.
func (s *redisServer) stop() { s.kill(true) }

// replica is one consultd: its address, data directory and log stay the same
// across the restarts the faults make, as for a process under a supervisor.
type replica struct {
	name    string
	addr    string
	bin     string
	env     []string
	logPath string

	mu    sync.Mutex
	proc  *child.Process // nil while down
	lives int            // how many times it was started: a new life resets its counters
}

func (r *replica) base() string { return "http://" + r.addr }

// current returns the running process and its life, or nil while down.
func (r *replica) current() (*child.Process, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc, r.lives
}

// start runs consultd and waits until it answers /healthz.
func (r *replica) start(ctx context.Context) error {
	r.mu.Lock()
	if r.proc != nil {
		r.mu.Unlock()
		return fmt.Errorf("%s is already running", r.name)
	}
	c, err := child.Start(r.name, r.logPath, r.env, r.bin)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.proc = c
	r.lives++
	r.mu.Unlock()
	return c.WaitHTTP(ctx, r.base()+"/healthz")
}

// kill ends the process with SIGKILL: nothing it held in memory survives, and
// the requests it was serving end with a reset connection.
func (r *replica) kill() {
	r.mu.Lock()
	c := r.proc
	r.proc = nil
	r.mu.Unlock()
	if c != nil {
		c.Kill()
	}
}

// stop shuts the process down gracefully, at the end of the run.
func (r *replica) stop() {
	r.mu.Lock()
	c := r.proc
	r.proc = nil
	r.mu.Unlock()
	if c != nil {
		c.Stop()
	}
}

// exitedUnasked names the replicas whose process ended without the harness
// stopping it: a crash, which the run reports.
func exitedUnasked(rs []*replica) []string {
	var out []string
	for _, r := range rs {
		if c, _ := r.current(); c != nil {
			if done, err := c.Exited(); done {
				out = append(out, fmt.Sprintf("%s (%v)", r.name, err))
			}
		}
	}
	return out
}
