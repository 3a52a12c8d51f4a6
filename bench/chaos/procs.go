package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

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

// child is one run of a server process the harness started.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild runs bin with env, appending its output to logPath: a replica's
// log then holds every life it had, with a line from the harness between them.
// The child gets its own process group, so that a Ctrl-C on the terminal reaches
// only the harness, which then stops its children in order; Pdeathsig stops the
// child if the harness itself is killed.
func startChild(logPath string, env []string, bin string, args ...string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "--- chaos: started %s at %s\n", bin, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); logf.Close(); close(c.done) }()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop asks the child to shut down and kills it if it has not within 20 s
// (consultd's own shutdown allows itself 20 s).
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.kill()
	}
}

// replica is one consultd: its address, data directory and log stay the same
// across the restarts the faults make, as for a process under a supervisor.
type replica struct {
	name    string
	addr    string
	bin     string
	env     []string
	logPath string

	mu    sync.Mutex
	proc  *child // nil while down
	lives int    // how many times it was started: a new life resets its counters
}

func (r *replica) base() string { return "http://" + r.addr }

// current returns the running process and its life, or nil while down.
func (r *replica) current() (*child, int) {
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
	c, err := startChild(r.logPath, r.env, r.bin)
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("%s: %w", r.name, err)
	}
	r.proc = c
	r.lives++
	r.mu.Unlock()
	return r.waitHealthy(ctx, c)
}

func (r *replica) waitHealthy(ctx context.Context, c *child) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base()+"/healthz", nil)
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("%s exited at start (%v); its log:\n%s", r.name, c.err, tailFile(r.logPath, 1500))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /healthz within 20 s; its log:\n%s", r.name, tailFile(r.logPath, 1500))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends the process with SIGKILL: nothing it held in memory survives, and
// the requests it was serving end with a reset connection.
func (r *replica) kill() {
	r.mu.Lock()
	c := r.proc
	r.proc = nil
	r.mu.Unlock()
	if c != nil {
		c.kill()
	}
}

// stop shuts the process down gracefully, at the end of the run.
func (r *replica) stop() {
	r.mu.Lock()
	c := r.proc
	r.proc = nil
	r.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// exitedUnasked names the replicas whose process ended without the harness
// stopping it: a crash, which the run reports.
func exitedUnasked(rs []*replica) []string {
	var out []string
	for _, r := range rs {
		if c, _ := r.current(); c != nil && c.exited() {
			out = append(out, fmt.Sprintf("%s (%v)", r.name, c.err))
		}
	}
	return out
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(empty log)"
}

// childEnv is the harness's environment without the variables consultd reads,
// so that a developer's shell can't change what runs, plus kv.
func childEnv(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "CONSULT_") || k == "REDIS_URL" || k == "SMTP_URL" || k == "DATA_DIR" ||
			k == "BASE_URL" || k == "MAIL_FROM" {
			continue
		}
		env = append(env, e)
	}
	return append(env, kv...)
}
