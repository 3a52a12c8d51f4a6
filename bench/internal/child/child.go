// Package child owns the server processes a benchmark harness starts: consultd,
// baseline servers, anything that listens on loopback and must be stopped, in
// order, when the harness ends or is interrupted.
package child

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"consult/internal/redisproc"
)

// stopWithin is how long Stop waits after SIGTERM before it kills: consultd's
// own shutdown allows itself 20 s.
const stopWithin = 20 * time.Second

// Process is one run of a program the harness started.
type Process struct {
	Name    string // in messages
	LogPath string // its stdout and stderr

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args and env, appending its output to logPath after a line
// that says when it started: a server restarted under the same log then keeps
// every life's output, one after the other.
//
// The child gets its own process group, so that a Ctrl-C on the terminal reaches
// only the harness, which then stops its children in order; Pdeathsig stops the
// child if the harness itself is killed.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	fmt.Fprintf(logf, "--- harness: started %s at %s\n", bin, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has stopped, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Alive is an error when the process has exited, with the end of its log.
func (p *Process) Alive() error {
	if done, err := p.Exited(); done {
		return fmt.Errorf("%s exited during the run (%v); its log:\n%s", p.Name, err, p.LogTail())
	}
	return nil
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop asks the process to shut down (SIGTERM) and kills it if it has not
// within 20 s.
func (p *Process) Stop() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopWithin):
		p.Kill()
	}
}

// LogTail is the end of the process's output, for error messages.
func (p *Process) LogTail() string { return Tail(p.LogPath, 1500) }

// WaitHTTP polls url until it answers 200, the process exits, ctx ends or 20 s
// pass.
func (p *Process) WaitHTTP(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited at start (%v); its log:\n%s", p.Name, err, p.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within 20 s; its log:\n%s", p.Name, url, p.LogTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Tail is the last n bytes of the file at path, trimmed, or a note saying why
// there are none.
func Tail(path string, n int) string {
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

// FreeAddr is a loopback host:port nobody listens on, for a child to listen on.
func FreeAddr() (string, error) {
	p, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// LookPath finds a program in PATH or, failing that, in /usr/bin, where Debian
// puts wrk and redis-tools when PATH is a developer's own.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := "/usr/bin/" + name
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}
