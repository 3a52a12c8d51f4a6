package redisproc

import (
	"context"
	"os"
	"path/filepath"
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
	if err := ping(p.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "data", "redis", "redis.log")); err != nil {
		t.Fatalf("log not where expected: %v", err)
	}
}
