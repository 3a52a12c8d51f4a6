package main

import (
	"context"
	"sync"
	"time"

	"consult/bench/internal/consultd"
)

// undeliveredMetric counts, in each consultd process, the comments it stored
// whose receipt never reached the client (the client gave up, or hung up).
const undeliveredMetric = "consult_comments_stored_undelivered_total"

// undeliveredScraper follows undeliveredMetric on every replica. The counter
// lives in the process, so each life of a replica starts again from zero: the
// scraper keeps the last value read per life and sums them. What a process
// counted after its last scrape and before a SIGKILL is lost with it, so the
// sum is a lower bound; the digest's own account (see check) is the exact one.
type undeliveredScraper struct {
	replicas []*replica
	every    time.Duration

	mu      sync.Mutex
	last    map[lifeKey]float64
	present bool // some consultd served the metric
}

type lifeKey struct {
	replica string
	life    int
}

func newUndeliveredScraper(rs []*replica) *undeliveredScraper {
	return &undeliveredScraper{replicas: rs, every: 500 * time.Millisecond, last: map[lifeKey]float64{}}
}

// Run scrapes every replica that is up until ctx ends.
func (s *undeliveredScraper) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.scrapeAll(ctx)
		t.Reset(s.every)
	}
}

// scrapeAll reads every replica that is up once; the harness calls it one last
// time before it stops them.
func (s *undeliveredScraper) scrapeAll(ctx context.Context) {
	for _, r := range s.replicas {
		c, life := r.current()
		if c == nil {
			continue
		}
		if done, _ := c.Exited(); done {
			continue
		}
		v, ok := s.scrape(ctx, r.base())
		if !ok {
			continue
		}
		s.mu.Lock()
		s.present = true
		if k := (lifeKey{r.name, life}); v > s.last[k] {
			s.last[k] = v
		}
		s.mu.Unlock()
	}
}

func (s *undeliveredScraper) scrape(ctx context.Context, base string) (float64, bool) {
	// A second at most: a replica held up by a stalled Redis must not hold up the
	// scrapes of the others for long.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := consultd.Metrics(ctx, base)
	if err != nil {
		return 0, false
	}
	v, ok := m[undeliveredMetric]
	return v, ok
}

// total is the sum over every life of every replica, and whether any consultd
// exposed the counter at all.
func (s *undeliveredScraper) total() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n float64
	for _, v := range s.last {
		n += v
	}
	return int64(n), s.present
}
