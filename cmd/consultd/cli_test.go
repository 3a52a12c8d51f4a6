package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"consult/record"
	"consult/store"
)

// cli runs one command as `consultd ARGS` with stdin, and returns its output.
func cli(t *testing.T, cfg Config, stdin string, args ...string) (string, error) {
	t.Helper()
	cfg.Command = args
	var out, errOut bytes.Buffer
	err := runCommand(context.Background(), cfg, terminal{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return out.String() + errOut.String(), err
}

func mustCLI(t *testing.T, cfg Config, stdin string, args ...string) string {
	t.Helper()
	out, err := cli(t, cfg, stdin, args...)
	if err != nil {
		t.Fatalf("consultd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCommandLine: users and tokens from the command line on the embedded
// redis-server, started for the command while consultd is not serving and
// shared while it is; the admin token generated only while no admin exists.
func TestCommandLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminToken = ""

	// No terminal and no --password-stdin: refused, nothing made.
	if _, err := cli(t, cfg, "", "user", "add", "root", "--role", "admin"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("no terminal: %v", err)
	}
	if _, err := cli(t, cfg, "short\n", "user", "add", "root", "--role", "admin", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := cli(t, cfg, "", "user", "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}

	// No admin yet: consultd generates an admin token.
	base, stop := startConsultd(t, cfg)
	gen, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	if err != nil {
		t.Fatalf("no generated admin token: %v", err)
	}
	// While it serves, a command uses its redis-server.
	mustCLI(t, cfg, "root password 2026\n", "user", "add", "--role", "admin", "root", "--password-stdin")
	mustCLI(t, cfg, "zhang password 2026\n", "user", "add", "zhang", "--role", "bureau", "--bureau", "洪雅县司法局", "--bureau", "某市交通运输局", "--password-stdin")
	stop()

	// Not serving: a command starts the embedded server itself.
	out := mustCLI(t, cfg, "", "user", "list")
	for _, want := range []string{"root", "admin", "zhang", "bureau", "洪雅县司法局; 某市交通运输局", "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list lacks %q:\n%s", want, out)
		}
	}
	tok := strings.TrimSpace(strings.Split(mustCLI(t, cfg, "", "token", "create", "--user", "zhang", "--scope", "read", "--label", "导出"), "\n")[0])
	if !regexp.MustCompile(`^ct_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Fatalf("token %q", tok)
	}
	id := strings.Split(tok, "_")[1]
	if out := mustCLI(t, cfg, "", "token", "list"); !strings.Contains(out, id) || !strings.Contains(out, "导出") || strings.Contains(out, tok) {
		t.Errorf("token list:\n%s", out)
	}

	// An admin exists now: the generated token is deleted and no longer works.
	base, stop = startConsultd(t, cfg)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "admin-token")); !os.IsNotExist(err) {
		t.Errorf("generated admin token still there: %v", err)
	}
	get := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/api/v1/drafts/none/comments", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := get(strings.TrimSpace(string(gen))); st != http.StatusUnauthorized {
		t.Errorf("retired admin token: %d", st)
	}
	if st := get(tok); st != http.StatusNotFound {
		t.Errorf("the user's token: %d, want 404 (authenticated, no such draft)", st)
	}
	mustCLI(t, cfg, "", "token", "revoke", id)
	if st := get(tok); st != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", st)
	}
	mustCLI(t, cfg, "another password 2026\n", "user", "passwd", "zhang", "--password-stdin")
	mustCLI(t, cfg, "", "user", "disable", "zhang")
	if out := mustCLI(t, cfg, "", "user", "list"); !strings.Contains(out, "disabled") {
		t.Errorf("after disable:\n%s", out)
	}
	if _, err := cli(t, cfg, "", "user", "disable", "nobody"); err == nil || !strings.Contains(err.Error(), "no user nobody") {
		t.Errorf("disable nobody: %v", err)
	}

	// Every change is in the staff record once, put down to the one at the console.
	rdb, done, err := connectForCommand(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	es, _, err := store.NewRecords(rdb).Page(context.Background(), record.Staff, 0, store.MaxPage)
	done()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.Actor != consoleActor() {
			t.Errorf("event %+v: actor is not %s", e, consoleActor())
		}
		got = append(got, fmt.Sprintf("%s %v%v", e.Action, e.Data["user"], e.Data["bureau"]))
	}
	want := []string{"user.created root<nil>", "bureau.created <nil>b1", "bureau.created <nil>b2", "user.created zhang<nil>",
		"token.created zhang<nil>", "token.revoked zhang<nil>", "user.changed zhang<nil>", "user.disabled zhang<nil>"}
	if !slices.Equal(got, want) {
		t.Errorf("staff record:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stop()
}

// TestConsoleName: any name the system gives makes a valid actor, the usual
// ones unchanged.
func TestConsoleName(t *testing.T) {
	for in, want := range map[string]string{
		"root": "root", "deploy.bot-2": "deploy.bot-2", "": "unknown", "jdoe@corp.example": "jdoe_corp.example",
		`CORP\jdoe`: "CORP_jdoe", "a b": "a_b", strings.Repeat("x", 200): strings.Repeat("x", 128),
	} {
		got := consoleName(in)
		if got != want || !record.Console(got).Valid() {
			t.Errorf("consoleName(%q) = %q, want %q (valid: %v)", in, got, want, record.Console(got).Valid())
		}
	}
	if !consoleActor().Valid() {
		t.Errorf("consoleActor() = %q is not a valid actor", consoleActor())
	}
}
