package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// poster sends comments over a bounded set of keep-alive connections.
type poster struct {
	client  *http.Client
	timeout time.Duration // the client's bound: no answer by then is a timeout
	dials   atomic.Int64  // connections opened
}

// newPoster returns a poster that opens at most conns connections to each host.
func newPoster(conns int, timeout time.Duration) *poster {
	p := &poster{timeout: timeout}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				p.dials.Add(1)
			}
			return c, err
		},
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		MaxIdleConns:        0, // no limit across hosts: the replicas each get conns
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	p.client = &http.Client{Transport: tr}
	return p
}

func (p *poster) close() { p.client.CloseIdleConnections() }

// warm opens n connections to url's host before a run, by sending n GETs at once
// (at most rounds times), so that a run starts with its connections as a crowd
// of clients would have them. It returns the connections opened.
func (p *poster) warm(ctx context.Context, url string, n, rounds int) int64 {
	for r := 0; r < rounds && p.dials.Load() < int64(n); r++ {
		var wg sync.WaitGroup
		startGate := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startGate
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if res, err := p.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
		}
		close(startGate)
		wg.Wait()
	}
	return p.dials.Load()
}

// post sends one comment to url, with X-Forwarded-For when xff is not empty, and
// says how it ended. Its latency runs from the call to the end of the answer.
func (p *poster) post(ctx context.Context, url string, body []byte, xff string) outcome {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return outcome{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return failed(ctx, err, time.Since(start))
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	o := outcome{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After") != "", Latency: time.Since(start)}
	if err != nil {
		f := failed(ctx, err, o.Latency)
		f.Status = 0
		return f
	}
	if res.StatusCode == http.StatusAccepted {
		var r struct {
			Receipt struct {
				Code string `json:"code"`
			} `json:"receipt"`
		}
		if json.Unmarshal(b, &r) == nil {
			o.Code = r.Receipt.Code
		}
		if o.Code == "" {
			o.Detail = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
	} else {
		o.Detail = strings.TrimSpace(string(b[:min(len(b), 200)]))
	}
	return o
}

// failed is a request that got no (whole) answer: a timeout when the client's
// bound ran out, else a transport error.
func failed(ctx context.Context, err error, took time.Duration) outcome {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return outcome{Timeout: true, Latency: took, Detail: err.Error()}
	}
	return outcome{Err: err, Latency: took}
}

// closedLoop is conns clients that each send the next comment as soon as the last
// one was answered: it measures what the server sustains, not what a crowd offers.
type closedLoop struct {
	Conns    int
	Duration time.Duration
	// Send sends request i of client w and returns how it ended.
	Send func(ctx context.Context, w int, i int64) outcome
}

// Run loads for Duration and returns the tally and how long it really ran.
func (l closedLoop) Run(ctx context.Context) (*tally, time.Duration) {
	t := &tally{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(l.Duration)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < l.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				o := l.Send(ctx, w, next.Add(1)-1)
				if ctx.Err() != nil {
					return // interrupted: not an answer
				}
				t.add(o)
			}
		}()
	}
	wg.Wait()
	return t, time.Since(start)
}
