package redisbench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseCSV(t *testing.T) {
	cases := []struct {
		file string
		want Result
	}{
		// redis-benchmark 7.0.15; the command in the first field is the JSON value, quotes unescaped.
		{"redis-benchmark-xadd.csv", Result{RPS: 51067.40, P50: 1031 * time.Microsecond, P99: 4015 * time.Microsecond}},
		// redis-benchmark 6 prints no header and no latencies.
		{"redis-benchmark-v6.csv", Result{RPS: 81300.81}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCSV(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("ParseCSV:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
	for _, bad := range []string{"", "Could not connect to Redis at 127.0.0.1:1: Connection refused\n",
		`"test","rps","avg_latency_ms"` + "\n" + `"XADD s * f v","fast","1.0"` + "\n"} {
		if _, err := ParseCSV(bad); err == nil {
			t.Errorf("ParseCSV(%q): no error", bad)
		}
	}
}
