package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// child is a server process the harness started. The same shape as bench/procs.go's,
// which is in package main and can't be imported.
type child struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// startChild runs bin with args and env, its output in logPath. The child gets
// its own process group, so that a Ctrl-C on the terminal reaches only the
// harness, which then stops its children in order; Pdeathsig stops the child if
// the harness itself is killed.
func startChild(name, logPath string, env []string, bin string, args ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); logf.Close(); close(c.done) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has stopped, and how.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// stop asks the child to shut down and kills it if it has not within 10 s.
func (c *child) stop() {
	if done, _ := c.exited(); done {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// alive is an error when the child has exited, with the end of its log.
func (c *child) alive() error {
	if done, err := c.exited(); done {
		return fmt.Errorf("%s exited during the run (%v); its log:\n%s", c.name, err, c.logTail())
	}
	return nil
}

func (c *child) logTail() string { return tailFile(c.logPath, 1500) }

// waitHTTP polls url until it answers 200, the child exits or 20 s pass.
func (c *child) waitHTTP(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := hc.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if done, err := c.exited(); done {
			return fmt.Errorf("%s exited at start (%v); its log:\n%s", c.name, err, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within 20 s; its log:\n%s", c.name, url, c.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty log)"
	}
	return s
}

// childEnv is the harness's environment without the variables consultd reads,
// so that a developer's shell can't change what is measured, plus kv.
func childEnv(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "CONSULT_") || k == "REDIS_URL" || k == "SMTP_URL" || k == "DATA_DIR" ||
			k == "BASE_URL" || k == "MAIL_FROM" || k == "GOGC" || k == "GOMAXPROCS" {
			continue
		}
		env = append(env, e)
	}
	return append(env, kv...)
}

// commandLine is the first line a command prints, whatever its exit status.
func commandLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if l = strings.TrimSpace(l); l != "" {
		return l
	}
	return "unknown"
}

func freeAddr() (string, error) {
	p, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// procStatus is a few lines of /proc/<pid>/status.
type procStatus struct {
	RSSKB, HWMKB int64 // resident set now, and its peak since the process started
	Threads      int64
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procStatus{}, err
	}
	return parseProcStatus(string(b)), nil
}

func parseProcStatus(s string) procStatus {
	var p procStatus
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			p.RSSKB = n
		case "VmHWM":
			p.HWMKB = n
		case "Threads":
			p.Threads = n
		}
	}
	return p
}
