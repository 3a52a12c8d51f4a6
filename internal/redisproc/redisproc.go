// Package redisproc starts and stops a redis-server child process: the embedded
// default of consultd and the real server the tests run against.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a redis-server child.
type Options struct {
	// Dir is the working directory: the append-only files live here. Required.
	Dir string
	// Port on 127.0.0.1; zero picks a free one.
	Port int
	// AppendFsync is "always" (the default: a receipt is a promise) or "everysec".
	AppendFsync string
	// Binary is the redis-server to run; empty finds it on PATH or in /usr/bin.
	Binary string
	// LogFile receives the server's log; empty means Dir/redis.log.
	LogFile string
	// Extra arguments for redis-server (cluster mode in tests, say).
	Extra []string
}

// ErrNoBinary means redis-server is not installed.
var ErrNoBinary = errors.New("redisproc: redis-server not found (install it: apt-get install redis-server, or `make deps`)")

// Proc is a running redis-server.
type Proc struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Find returns the path of redis-server.
func Find(binary string) (string, error) {
	if binary != "" {
		return binary, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBinary
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs redis-server and waits until it answers PING.
func Start(ctx context.Context, o Options) (*Proc, error) {
	bin, err := Find(o.Binary)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("redisproc: Dir is required")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.AppendFsync == "" {
		o.AppendFsync = "always"
	}
	// redis-server runs in dir, so every path it is given must be absolute.
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	if o.LogFile == "" {
		o.LogFile = filepath.Join(dir, "redis.log")
	}
	if o.LogFile, err = filepath.Abs(o.LogFile); err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(o.Port),
		"--dir", dir,
		"--appendonly", "yes",
		"--appendfsync", o.AppendFsync,
		"--save", "",
		// Comments are appended, never rewritten, so compacting the append-only file
		// saves little; Redis's default (rewrite once it doubles past 64 MB) forked
		// and rewrote the whole dataset every few seconds under load (six times in
		// fifteen seconds on the benchmark), each time taking a core from the intake.
		"--auto-aof-rewrite-min-size", "512mb",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--logfile", o.LogFile,
		"--maxclients", "10000",
	}
	args = append(args, o.Extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Its own process group, so that a Ctrl-C on the terminal reaches consultd
	// first, which then stops redis after the last write.
	// Pdeathsig: if consultd dies without stopping it, the kernel stops redis too,
	// so that a restarted consultd never runs a second server on the same files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redisproc: start %s: %w", bin, err)
	}
	p := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)), cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(p.Addr) == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redisproc: redis-server exited at start (%v); its log: %s", p.err, tail(o.LogFile))
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("redisproc: redis-server did not answer on %s; its log: %s", p.Addr, tail(o.LogFile))
		}
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill stops the server abruptly, as a crash would (for tests).
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop asks the server to shut down (SIGTERM: it finishes writing the AOF), and kills
// it if it has not exited within ten seconds.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// ping speaks just enough RESP to know the server is up, so that this package
// needs no client library.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redisproc: unexpected reply %q", line)
	}
	return nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Pid is the server's process id, for tests that stall it (SIGSTOP) as a hung
// server would.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }
