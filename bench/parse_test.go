package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The wrk samples are wrk 4.1.0's own output (wrk-errors.txt has its error lines
// added by hand, in the format of wrk.c).
func TestParseWrk(t *testing.T) {
	cases := []struct {
		file string
		want result
	}{
		{"wrk-intake.txt", result{RPS: 10950.74, P50: 5210 * time.Microsecond, P99: 16020 * time.Microsecond, Requests: 21979}},
		{"wrk-bare.txt", result{RPS: 85807.30, P50: 628 * time.Microsecond, P99: 9740 * time.Microsecond, Requests: 172091}},
		{"wrk-errors.txt", result{RPS: 1615.57, P50: 21070 * time.Microsecond, P99: 1200 * time.Millisecond, Requests: 16188,
			Non2xx: 431, Errors: socketErrors{Read: 2, Timeout: 17}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := parseWrk(readTestdata(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("parseWrk:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseWrkRefusesIncompleteOutput(t *testing.T) {
	full := readTestdata(t, "wrk-intake.txt")
	noLatency := strings.Replace(full, "     50%    5.21ms\n", "", 1)
	zero := strings.NewReplacer("21979 requests", "0 requests", "5.21ms", "0.00us", "16.02ms", "0.00us").Replace(full)
	cases := map[string]struct{ out, want string }{
		"empty":              {"", "no Requests/sec"},
		"connection refused": {"unable to connect to 127.0.0.1:1 Connection refused\n", "no Requests/sec"},
		"without --latency":  {noLatency, "no 50% and 99%"},
		"no request":         {zero, "completed no request"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseWrk(c.out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("parseWrk: err %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3: %v", got)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median of 4: %v", got) // (2+3)/2 in integer nanoseconds
	}
	if got := median[float64](nil); got != 0 {
		t.Errorf("median of none: %v", got)
	}
}
