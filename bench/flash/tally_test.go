package main

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		want   answer
	}{
		{202, ansAccepted}, {503, ansUnavailable}, {429, ansTooMany},
		{400, ansOther4xx}, {409, ansOther4xx}, {413, ansOther4xx}, {422, ansOther4xx},
		{500, ansOther5xx}, {502, ansOther5xx}, {504, ansOther5xx},
		{200, ansOtherStatus}, {201, ansOtherStatus}, {303, ansOtherStatus}, {101, ansOtherStatus},
	}
	for _, tt := range tests {
		if got := classify(tt.status); got != tt.want {
			t.Errorf("classify(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
}

func TestTally(t *testing.T) {
	var tl tally
	in := []outcome{
		{Status: 202, Code: "7-AAAAA-AAAAA", Latency: 2 * time.Millisecond},
		{Status: 202, Code: "7-BBBBB-BBBBB", Latency: 4 * time.Millisecond},
		{Status: 202, Latency: 3 * time.Millisecond, Detail: "{}"}, // a 202 without a receipt
		{Status: 503, RetryAfter: true}, {Status: 503, RetryAfter: true}, {Status: 503},
		{Status: 429, RetryAfter: true}, {Status: 429},
		{Status: 422, Detail: `{"code":"invalid"}`}, {Status: 409, Detail: "second"},
		{Status: 500, Detail: `{"code":"internal"}`},
		{Status: 200},
		{Timeout: true, Latency: 5 * time.Second, Detail: "context deadline exceeded"},
		{Err: errors.New("connection reset by peer")},
		{}, // no status and no error: still not an answer
	}
	for _, o := range in {
		tl.add(o)
	}
	s := tl.snapshot()
	wantCounts := [nAnswers]int64{ansAccepted: 3, ansUnavailable: 3, ansTooMany: 2, ansOther4xx: 2, ansOther5xx: 1,
		ansOtherStatus: 1, ansTimeout: 1, ansError: 2}
	if s.Counts != wantCounts {
		t.Errorf("counts %v, want %v", s.Counts, wantCounts)
	}
	wantRA := [nAnswers]int64{ansUnavailable: 2, ansTooMany: 1}
	if s.RetryAfter != wantRA {
		t.Errorf("Retry-After counts %v, want %v", s.RetryAfter, wantRA)
	}
	if s.Total() != int64(len(in)) {
		t.Errorf("Total() = %d, want %d", s.Total(), len(in))
	}
	if s.ReceiptsLost != 1 {
		t.Errorf("ReceiptsLost = %d, want 1", s.ReceiptsLost)
	}
	if got := tl.receiptCodes(); len(got) != 2 || got[0] != "7-AAAAA-AAAAA" || got[1] != "7-BBBBB-BBBBB" {
		t.Errorf("receipt codes %q", got)
	}
	// Only the 202s' latencies: 2, 3 and 4 ms (the histogram is within 1/64).
	if math.Abs(float64(s.P50-3*time.Millisecond)) > float64(3*time.Millisecond)/64 || s.Max != 4*time.Millisecond {
		t.Errorf("202 latency p50 %s max %s, want 3ms and 4ms", s.P50, s.Max)
	}
	wantSamples := map[answer]string{
		ansOther4xx: `Unprocessable Entity: {"code":"invalid"}`, ansOther5xx: `Internal Server Error: {"code":"internal"}`,
		ansOtherStatus: "OK: ", ansTimeout: "context deadline exceeded", ansError: "connection reset by peer",
	}
	if len(s.Samples) != len(wantSamples) {
		t.Errorf("samples %q, want %q", s.Samples, wantSamples)
	}
	for a, want := range wantSamples {
		if s.Samples[a] != want {
			t.Errorf("sample of %s = %q, want %q (the first one)", a, s.Samples[a], want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lands in a bucket whose middle is within 1/64 of it, and the
	// buckets are in order.
	prev := -1
	for us := uint64(0); us < 1<<22; us += 1 + us/300 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", us, b, prev)
		}
		prev = b
		if mid := bucketMid(b); math.Abs(mid-float64(us)) > float64(us)/64+0.5 {
			t.Fatalf("bucketOf(%d) = %d, whose middle %g is more than 1/64 away", us, b, mid)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Error("an empty histogram has a median")
	}
	// 1 ms … 100 ms in steps of 10 µs: 10,000 values.
	for us := 1000; us <= 100_000; us += 10 {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50_500 * time.Microsecond}, {0.99, 99_010 * time.Microsecond}, {0.999, 99_910 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if math.Abs(float64(got-tt.want)) > float64(tt.want)/64 {
			t.Errorf("quantile(%g) = %s, want %s within 1/64", tt.q, got, tt.want)
		}
	}
	if h.quantile(1) > h.max {
		t.Errorf("quantile(1) = %s, above the largest value %s", h.quantile(1), h.max)
	}
	// A small exact case: nearest rank.
	var s histogram
	for _, ms := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 100} {
		s.record(time.Duration(ms) * time.Microsecond)
	}
	if got := s.quantile(0.9); got != 9*time.Microsecond {
		t.Errorf("p90 of 1…9, 100 µs = %s, want 9µs", got)
	}
	if got := s.quantile(0.99); got != 100*time.Microsecond {
		t.Errorf("p99 of 1…9, 100 µs = %s, want 100µs", got)
	}
}
