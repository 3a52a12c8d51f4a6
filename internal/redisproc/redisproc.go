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
	// Password, when set, is required of every client (requirepass; see
	// writeConfig for why not ACL users). Empty: no authentication, as in tests.
	Password string
	// MaxMemory caps what redis-server may hold, in bytes; zero means no limit.
	// Whatever the cap, the policy is noeviction: a full server refuses writes
	// rather than delete keys, and a deleted key could be a comment.
	MaxMemory int64
	// Extra arguments for redis-server (cluster mode in tests, say).
	Extra []string
}

// ErrNoBinary means redis-server is not installed.
var ErrNoBinary = errors.New("redisproc: redis-server not found (install it: apt-get install redis-server, or `make deps`)")

// Proc is a running redis-server.
type Proc struct {
	Addr     string
	password string
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
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
	// MkdirAll leaves an existing directory as it was; this one holds the
	// append-only file (every name and contact) and the config with the password.
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	if o.MaxMemory < 0 {
		return nil, errors.New("redisproc: MaxMemory is negative")
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
	conf, err := writeConfig(dir, o.Password)
	if err != nil {
		return nil, err
	}
	// The config file comes first: redis-server reads it, then the arguments.
	args := []string{
		conf,
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
		"--maxmemory", strconv.FormatInt(o.MaxMemory, 10),
		"--maxmemory-policy", "noeviction",
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
	p := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)), password: o.Password, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(p.Addr, p.password) == nil {
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

// writeConfig writes dir/redis.conf, mode 0600, with what must not be on
// redis-server's command line, which every local user can read (ps,
// /proc/<pid>/cmdline): the password. It is rewritten at every start, so the file
// is always what this process asked for.
//
// The password is requirepass, the default user's, which may run every command.
// An ACL user limited to consult's commands would guard only against someone who
// already holds the password, that is the account consultd runs as, which can read
// the append-only file directly anyway; and a command list drifts from the code
// (a new command would fail only in production, with NOPERM). What an
// authenticated client could still misuse, CONFIG SET dir or dbfilename to write
// files elsewhere, DEBUG, MODULE LOAD, Redis 7 refuses by default
// (enable-protected-configs, enable-debug-command, enable-module-command).
func writeConfig(dir, password string) (string, error) {
	for _, r := range password {
		// Written between double quotes, which redis-server reads with C escapes.
		if r <= ' ' || r > '~' || r == '"' || r == '\\' || r == '\'' {
			return "", errors.New("redisproc: the password must be printable ASCII without spaces, quotes or backslashes")
		}
	}
	var b strings.Builder
	b.WriteString("# Written by consultd at every start of redis-server; edits are overwritten.\n")
	if password != "" {
		fmt.Fprintf(&b, "requirepass \"%s\"\n", password)
	}
	path := filepath.Join(dir, "redis.conf")
	// CreateTemp makes the file 0600 before anything is written to it; the rename
	// replaces a file that may have had looser permissions.
	f, err := os.CreateTemp(dir, "redis.conf.*")
	if err != nil {
		return "", fmt.Errorf("redisproc: config: %w", err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("redisproc: config: %w", err)
	}
	return path, nil
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
// needs no client library. With a password it authenticates first: redis-server
// answers an unauthenticated PING with NOAUTH.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	req := "PING\r\n"
	if password != "" {
		req = fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password) + req
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if password != "" {
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("redisproc: AUTH refused: %q", line)
		}
		if line, err = r.ReadString('\n'); err != nil {
			return err
		}
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
