package redisproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartRelativeDir: DATA_DIR defaults to ./data, a relative path, which must
// work although redis-server runs in that directory.
func TestStartRelativeDir(t *testing.T) {
	base := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(wd) })
	p, err := Start(context.Background(), Options{Dir: filepath.Join("data", "redis")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := ping(p.Addr, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "data", "redis", "redis.log")); err != nil {
		t.Fatalf("log not where expected: %v", err)
	}
}

// TestStartPassword: with a password the server refuses what comes without it
// (ping at start authenticates), and the password goes to a 0600 config file.
func TestStartPassword(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(context.Background(), Options{Dir: dir, Password: "s3cret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := ping(p.Addr, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password: %v, want NOAUTH", err)
	}
	if err := ping(p.Addr, "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	if err := ping(p.Addr, "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	fi, err := os.Stat(filepath.Join(dir, "redis.conf"))
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("redis.conf: %v %v", fi, err)
	}
}

// TestStartRefusesUnquotablePassword: the password is written between double
// quotes in redis.conf, so one that would break out of them never gets there.
func TestStartRefusesUnquotablePassword(t *testing.T) {
	for _, pw := range []string{`a"b`, `a b`, `a\b`, "a\nrequirepass x", "密码"} {
		if _, err := Start(context.Background(), Options{Dir: t.TempDir(), Password: pw}); err == nil {
			t.Errorf("password %q accepted", pw)
		}
	}
}
