package main

import (
	"math"
	"math/bits"
	"net/http"
	"sync"
	"time"
)

// answer is how one request ended, in the classes the report counts.
type answer int

const (
	ansAccepted    answer = iota // 202: a receipt
	ansUnavailable               // 503: shed, come back later
	ansTooMany                   // 429: a rate limit
	ansOther4xx
	ansOther5xx
	ansOtherStatus // 1xx, 3xx, or a 2xx that is not 202
	ansTimeout     // no answer within the client's bound
	ansError       // the connection failed: refused, reset, closed early
	nAnswers
)

var answerNames = [nAnswers]string{"202", "503", "429", "other 4xx", "other 5xx", "other status", "client timeout", "transport error"}

func (a answer) String() string { return answerNames[a] }

// classify puts an HTTP status into its class.
func classify(status int) answer {
	switch {
	case status == http.StatusAccepted:
		return ansAccepted
	case status == http.StatusServiceUnavailable:
		return ansUnavailable
	case status == http.StatusTooManyRequests:
		return ansTooMany
	case status >= 400 && status < 500:
		return ansOther4xx
	case status >= 500 && status < 600:
		return ansOther5xx
	}
	return ansOtherStatus
}

// outcome is one request's end, as the client saw it.
type outcome struct {
	Status     int           // 0 when there was no answer
	RetryAfter bool          // the answer carried Retry-After
	Code       string        // a 202's receipt code
	Latency    time.Duration // from the request's launch to the end of the answer
	Timeout    bool          // no answer within the client's bound
	Err        error         // the connection failed (not a timeout)
	Detail     string        // the start of an unexpected answer, for the report
}

func (o outcome) answer() answer {
	switch {
	case o.Timeout:
		return ansTimeout
	case o.Err != nil || o.Status == 0:
		return ansError
	}
	return classify(o.Status)
}

// tally counts outcomes by class. It keeps every receipt code, to be looked up in
// the record afterwards, and the latency of the 202s.
type tally struct {
	mu           sync.Mutex
	counts       [nAnswers]int64
	retryAfter   [nAnswers]int64 // answers of the class that carried Retry-After
	accepted     histogram       // latency of the 202s
	codes        []string
	receiptsLost int64             // 202s whose body had no receipt code
	samples      map[answer]string // the first unexpected answer of each class
}

func (t *tally) add(o outcome) {
	a := o.answer()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[a]++
	if o.RetryAfter {
		t.retryAfter[a]++
	}
	switch {
	case a == ansAccepted && o.Code != "":
		t.accepted.record(o.Latency)
		t.codes = append(t.codes, o.Code)
	case a == ansAccepted:
		t.accepted.record(o.Latency)
		t.receiptsLost++
	case a != ansUnavailable && a != ansTooMany:
		if t.samples == nil {
			t.samples = map[answer]string{}
		}
		if _, ok := t.samples[a]; !ok {
			t.samples[a] = sampleText(o)
		}
	}
}

func sampleText(o outcome) string {
	if o.Err != nil {
		return o.Err.Error()
	}
	if o.Status != 0 {
		return http.StatusText(o.Status) + ": " + o.Detail
	}
	return o.Detail
}

// tallySnapshot is a tally's counts at one moment, safe to read.
type tallySnapshot struct {
	Counts       [nAnswers]int64
	RetryAfter   [nAnswers]int64
	P50, P99     time.Duration // of the 202s
	P999, Max    time.Duration
	ReceiptsLost int64
	Samples      map[answer]string
}

func (t *tally) snapshot() tallySnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := tallySnapshot{Counts: t.counts, RetryAfter: t.retryAfter, ReceiptsLost: t.receiptsLost,
		P50: t.accepted.quantile(0.50), P99: t.accepted.quantile(0.99), P999: t.accepted.quantile(0.999), Max: t.accepted.max,
		Samples: map[answer]string{}}
	for k, v := range t.samples {
		s.Samples[k] = v
	}
	return s
}

// receiptCodes is every 202's receipt code so far.
func (t *tally) receiptCodes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.codes...)
}

// Total is every request that ended.
func (s tallySnapshot) Total() int64 {
	var n int64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// histogram is a log-linear histogram of durations in microseconds: exact below
// 128 µs, then 64 buckets per power of two, so a quantile is within 1/64 (1.6 %)
// of the true value in bounded memory, however many requests a run makes.
type histogram struct {
	counts []int64
	n      int64
	max    time.Duration
}

const subBits = 6 // 64 buckets per power of two

func bucketOf(us uint64) int {
	if us < 2<<subBits {
		return int(us)
	}
	e := bits.Len64(us) - (subBits + 1) // us>>e is in [64, 128)
	return (e+1)<<subBits + int(us>>e) - 1<<subBits
}

// bucketMid is the middle of bucket b's range, in microseconds.
func bucketMid(b int) float64 {
	if b < 2<<subBits {
		return float64(b)
	}
	e := b>>subBits - 1
	low := uint64(b&(1<<subBits-1)+1<<subBits) << e
	return float64(low) + float64(uint64(1)<<e)/2
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	b := bucketOf(uint64(d / time.Microsecond))
	if b >= len(h.counts) {
		h.counts = append(h.counts, make([]int64, b+1-len(h.counts))...)
	}
	h.counts[b]++
	h.n++
	h.max = max(h.max, d)
}

// quantile is the duration below which a fraction q of the values lie (nearest
// rank), never above the largest value recorded; 0 when there are none.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// Less a hair before rounding up, so that 0.99 × 100 is rank 99, not 100.
	rank := int64(math.Ceil(q*float64(h.n) - 1e-9))
	rank = min(max(rank, 1), h.n)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMid(b)*float64(time.Microsecond)), h.max)
		}
	}
	return h.max
}
