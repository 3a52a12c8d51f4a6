package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errKind is how one attempt at a submission failed.
type errKind int

const (
	errNone errKind = iota
	err503
	err5xx
	err4xx
	errRefused
	errReset
	errTimeout
	errOther
)

// errKinds is the order of the report.
var errKinds = []errKind{err503, err5xx, err4xx, errRefused, errReset, errTimeout, errOther}

func (k errKind) String() string {
	return [...]string{"none", "503", "other 5xx", "4xx", "connection refused", "connection reset", "client timeout", "other"}[k]
}

// retryable: a client with an Idempotency-Key sends the same comment again after
// these. A 4xx is an answer about the comment itself and would come back the same.
func (k errKind) retryable() bool { return k != errNone && k != err4xx }

// submission is one comment a client set out to send, however many attempts it
// took. Its marker is written into the body, which is how the check finds the
// comment's copies in the digest whatever receipt code they carry.
type submission struct {
	Marker   string
	Key      string // the Idempotency-Key, "" when sent without one
	Attempts int
	Receipt  string  // the receipt code the client got, "" when none
	Last     errKind // why the last attempt failed, when Receipt is ""
}

// loadConfig shapes the load.
type loadConfig struct {
	Clients int
	Rate    float64       // new submissions per second, all clients together
	For     time.Duration // new submissions start within this
	// RetryFor: a keyed submission still failing when For has passed is retried
	// for at most this much longer, then given up.
	RetryFor time.Duration
	// Timeout bounds one attempt. The stalls are longer, so that a client gives
	// up while its comment waits in Redis's socket.
	Timeout time.Duration
	// KeyedShare is the share of submissions sent with an Idempotency-Key.
	KeyedShare float64
	Seed       uint64
}

// load is the citizens: Clients goroutines, each sending comments one after
// another to the replicas in turn, at Rate together.
type load struct {
	cfg     loadConfig
	targets []string // the replicas' comment URLs
	body    func(marker string) []byte
	hc      *http.Client

	mu       sync.Mutex
	subs     []*submission
	attempts int
	failed   map[errKind]int // attempts, by how they failed
	answers  map[string]int  // 4xx and other unexpected answers: "409 window_closed"
}

func newLoad(cfg loadConfig, targets []string, body func(string) []byte) *load {
	return &load{
		cfg: cfg, targets: targets, body: body,
		hc: &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: cfg.Clients, DisableCompression: true,
			DialContext: (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		}},
		failed: map[errKind]int{}, answers: map[string]int{},
	}
}

// Run sends comments until cfg.For has passed since start, and returns once every
// client has finished its last submission (retries included).
func (l *load) Run(ctx context.Context, start time.Time) {
	stopNew := start.Add(l.cfg.For)
	giveUp := stopNew.Add(l.cfg.RetryFor)
	// Each client paces itself so that together they send Rate per second.
	gap := time.Duration(float64(l.cfg.Clients) / l.cfg.Rate * float64(time.Second))
	var wg sync.WaitGroup
	for c := range l.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(l.cfg.Seed, uint64(c)))
			next := c // the replica of the next attempt: clients start spread out
			for seq := 0; ; seq++ {
				// Jitter, so that the clients do not move in step.
				if !sleep(ctx, time.Duration(float64(gap)*(0.5+rng.Float64()))) || time.Now().After(stopNew) {
					return
				}
				s := &submission{Marker: fmt.Sprintf("chaos-c%02d-s%05d", c, seq)}
				if rng.Float64() < l.cfg.KeyedShare {
					s.Key = fmt.Sprintf("chaos-%d-%d-%d", l.cfg.Seed, c, seq)
				}
				l.mu.Lock()
				l.subs = append(l.subs, s)
				l.mu.Unlock()
				l.submit(ctx, s, &next, giveUp)
			}
		}()
	}
	wg.Wait()
}

// submit sends s until it gets a receipt or must give up. Without a key a client
// cannot tell a retry from a second comment, so it does not retry: the comment is
// then either stored without the client knowing its receipt, or not at all.
func (l *load) submit(ctx context.Context, s *submission, next *int, giveUp time.Time) {
	body := l.body(s.Marker)
	backoff := 100 * time.Millisecond
	for {
		url := l.targets[*next%len(l.targets)]
		// A retry goes to the next replica, as a load balancer would send it: the
		// one that failed may be down.
		*next++
		code, kind, answer := l.attempt(ctx, url, body, s.Key)
		if ctx.Err() != nil {
			return // interrupted: this attempt says nothing about the server
		}
		l.mu.Lock()
		s.Attempts++
		l.attempts++
		if kind != errNone {
			l.failed[kind]++
		}
		if answer != "" {
			l.answers[answer]++
		}
		l.mu.Unlock()
		if kind == errNone {
			s.Receipt, s.Last = code, errNone
			return
		}
		s.Last = kind
		// Retry-After (5 s) is not honoured: the client's patience is shorter, and
		// the next replica may well answer now.
		if s.Key == "" || !kind.retryable() || time.Now().Add(backoff).After(giveUp) || !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

// attempt posts one comment. It returns the receipt code, or how it failed and,
// for an answer that is not an outage, its status and problem code.
//
// With an Idempotency-Key header, net/http itself may resend the request once
// on a kept-alive connection that turns out to be dead; that is the same
// retry, with the same key, that this client would make.
func (l *load) attempt(ctx context.Context, url string, body []byte, key string) (string, errKind, string) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", errOther, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := l.hc.Do(req)
	if err != nil {
		return "", transportKind(err), ""
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", transportKind(err), ""
	}
	var p struct {
		Code    string `json:"code"`
		Receipt struct {
			Code string `json:"code"`
		} `json:"receipt"`
	}
	_ = json.Unmarshal(out, &p)
	switch {
	case res.StatusCode == http.StatusAccepted && p.Receipt.Code != "":
		return p.Receipt.Code, errNone, ""
	case res.StatusCode == http.StatusServiceUnavailable:
		return "", err503, ""
	case res.StatusCode >= 500:
		return "", err5xx, ""
	case res.StatusCode >= 400:
		return "", err4xx, fmt.Sprintf("%d %s", res.StatusCode, p.Code)
	}
	return "", errOther, fmt.Sprintf("%d %.80s", res.StatusCode, strings.TrimSpace(string(out)))
}

// transportKind classifies an attempt that got no complete answer.
func transportKind(err error) errKind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errReset
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	}
	return errOther
}

// results returns the submissions and the attempts' tallies, once Run returned.
func (l *load) results() ([]*submission, int, map[errKind]int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subs, l.attempts, l.failed, l.answers
}

// sleep waits d, or less if ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
