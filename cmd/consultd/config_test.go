package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

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
