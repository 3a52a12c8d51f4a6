package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"consult/internal/redisproc"
	"consult/internal/redistest"
)

func TestConfigFromEnvironmentAndFlags(t *testing.T) {
	t.Setenv("CONSULT_ADDR", "127.0.0.1:9999")
	t.Setenv("SMTP_URL", "smtp://user:s3cret@mail.example.cn:587")
	t.Setenv("CONSULT_DEMO", "false")
	c, err := LoadConfig([]string{"-addr", "127.0.0.1:7000", "-workers", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" || c.Workers != 3 || c.Demo || c.BaseURL != "http://127.0.0.1:7000" || c.AppendFsync != "always" || c.TimeZone != "Asia/Shanghai" {
		t.Fatalf("config %+v", c)
	}

	t.Setenv("SMTP_URL", "ftp://user:s3cret@host")
	t.Setenv("CONSULT_APPENDFSYNC", "never")
	t.Setenv("CONSULT_TZ", "Mars/Olympus")
	_, err = LoadConfig(nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"SMTP_URL", "CONSULT_APPENDFSYNC", "CONSULT_TZ"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Error("the error shows the SMTP password")
	}
}

// TestExternalRedisPersistenceWarning: with a server that fsyncs only every second,
// /readyz and the log say acknowledged comments could be lost.
func TestExternalRedisPersistenceWarning(t *testing.T) {
	rs := redistest.StartWith(t, redisproc.Options{AppendFsync: "everysec"})
	cfg := testConfig(t)
	cfg.RedisURL = "redis://" + rs.Addr
	base, _ := startConsultd(t, cfg)
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		Status   string
		Warnings []string
	}
	_ = json.NewDecoder(res.Body).Decode(&r)
	if res.StatusCode != 200 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "everysec") {
		t.Fatalf("readyz %d %+v", res.StatusCode, r)
	}
}

func TestConfigRedisMaxMemory(t *testing.T) {
	t.Setenv("REDIS_URL", "") // the default is for the embedded server
	t.Setenv("CONSULT_REDIS_MAXMEMORY", "")
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := memoryLimit(os.DirFS("/"))
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisMaxMemory != mem/2 || c.RedisMaxMemory <= 0 {
		t.Fatalf("default maxmemory %d, want half of %d", c.RedisMaxMemory, mem)
	}
	for v, want := range map[string]int64{"0": 0, "4gb": 4 << 30, "512MB": 512 << 20, "1000000": 1e6, "2g": 2e9} {
		t.Setenv("CONSULT_REDIS_MAXMEMORY", v)
		if c, err := LoadConfig(nil); err != nil || c.RedisMaxMemory != want {
			t.Errorf("CONSULT_REDIS_MAXMEMORY=%s: %d %v, want %d", v, c.RedisMaxMemory, err, want)
		}
	}
	t.Setenv("CONSULT_REDIS_MAXMEMORY", "half")
	if _, err := LoadConfig(nil); err == nil || !strings.Contains(err.Error(), "CONSULT_REDIS_MAXMEMORY") {
		t.Fatalf("CONSULT_REDIS_MAXMEMORY=half: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1234", 1234, true}, {"10b", 10, true}, {"1k", 1000, true}, {"1kb", 1024, true},
		{"3m", 3e6, true}, {"3mb", 3 << 20, true}, {"4g", 4e9, true}, {"4GB", 4 << 30, true}, {" 8gb ", 8 << 30, true},
		{"", 0, false}, {"gb", 0, false}, {"-1", 0, false}, {"1.5gb", 0, false}, {"4tb", 0, false},
		{"9223372036854775807gb", 0, false}, {"10000000000gb", 0, false},
	} {
		got, err := parseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for n, want := range map[int64]string{0: "no limit", 512: "512b", 3 << 20: "3mb", 4 << 30: "4gb", 12342048000: "11.5gb"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestMemoryLimit: MemTotal, unless the process's memory cgroup (v1 or v2,
// namespaced or not) allows less.
func TestMemoryLimit(t *testing.T) {
	meminfo := &fstest.MapFile{Data: []byte("MemTotal:       16384000 kB\nMemFree:         1000 kB\n")}
	const total = 16384000 * 1024
	for name, tc := range map[string]struct {
		files fstest.MapFS
		want  int64
	}{
		"no cgroup": {fstest.MapFS{"proc/meminfo": meminfo}, total},
		"v2 unlimited": {fstest.MapFS{"proc/meminfo": meminfo, "proc/self/cgroup": {Data: []byte("0::/system.slice/consultd.service\n")},
			"sys/fs/cgroup/system.slice/consultd.service/memory.max": {Data: []byte("max\n")}}, total},
		"v2 service limit": {fstest.MapFS{"proc/meminfo": meminfo, "proc/self/cgroup": {Data: []byte("0::/system.slice/consultd.service\n")},
			"sys/fs/cgroup/system.slice/consultd.service/memory.max": {Data: []byte("2147483648\n")}}, 2 << 30},
		"v2 container": {fstest.MapFS{"proc/meminfo": meminfo, "proc/self/cgroup": {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")}}, 1 << 30},
		"v1 unlimited": {fstest.MapFS{"proc/meminfo": meminfo, "proc/self/cgroup": {Data: []byte("4:memory:/docker/abc\n0::/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}}, total},
		"v1 limit": {fstest.MapFS{"proc/meminfo": meminfo, "proc/self/cgroup": {Data: []byte("5:cpu,memory:/docker/abc\n")},
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("536870912\n")}}, 512 << 20},
	} {
		got, err := memoryLimit(tc.files)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d %v, want %d", name, got, err, tc.want)
		}
	}
	if _, err := memoryLimit(fstest.MapFS{}); err == nil {
		t.Error("no /proc/meminfo: no error")
	}
}

// TestExternalRedisEvictionWarning: a server that may evict keys when full is
// named in /readyz: an evicted key could be a comment.
func TestExternalRedisEvictionWarning(t *testing.T) {
	rs := redistest.StartWith(t, redisproc.Options{Extra: []string{"--maxmemory-policy", "allkeys-lru"}})
	cfg := testConfig(t)
	cfg.RedisURL = "redis://" + rs.Addr
	base, _ := startConsultd(t, cfg)
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ Warnings []string }
	_ = json.NewDecoder(res.Body).Decode(&r)
	if res.StatusCode != 200 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "allkeys-lru") {
		t.Fatalf("readyz %d %+v", res.StatusCode, r)
	}
}
