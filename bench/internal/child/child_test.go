package child

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLives starts a process that fails at once and then one that runs until it
// is stopped, under the same log, as the chaos harness restarts a replica.
func TestLives(t *testing.T) {
	sh, err := LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "server.log")

	p, err := Start("server", log, nil, sh, "-c", "echo first life; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on addr: WaitHTTP returns when the process exits.
	err = p.WaitHTTP(context.Background(), "http://"+addr+"/healthz")
	if err == nil || !strings.Contains(err.Error(), "server exited at start (exit status 3)") || !strings.Contains(err.Error(), "first life") {
		t.Errorf("WaitHTTP: %v; want the exit and the log", err)
	}
	if err := p.Alive(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Alive after the exit: %v", err)
	}

	p, err = Start("server", log, nil, sh, "-c", "exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Alive(); err != nil {
		t.Errorf("Alive while running: %v", err)
	}
	p.Stop()
	if done, err := p.Exited(); !done || err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("after Stop: exited %v, %v; want terminated by SIGTERM", done, err)
	}
	b, _ := os.ReadFile(log)
	if n := strings.Count(string(b), "--- harness: started "+sh); n != 2 {
		t.Errorf("the log has %d start lines, want 2:\n%s", n, b)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := Tail(write("long", "abcdef\n"), 4); got != "def" {
		t.Errorf("Tail of a long file: %q", got)
	}
	if got := Tail(write("blank", " \n"), 10); got != "(empty log)" {
		t.Errorf("Tail of a blank file: %q", got)
	}
	if got := Tail(filepath.Join(dir, "none"), 10); !strings.HasPrefix(got, "(no log: ") {
		t.Errorf("Tail of no file: %q", got)
	}
}
