package main

import (
	"context"
	"sync"
	"time"

	"consult/bench/internal/consultd"
)

// sampler watches consultd during a run: its resident set and threads from
// /proc/<pid>/status every Every, its goroutines once a second (those come over
// HTTP, from a server that may be drowning, so they have their own loop).
type sampler struct {
	c     *consultd.Server
	Every time.Duration

	mu      sync.Mutex
	peak    procStatus // the largest RSS and thread count seen
	gPeak   int64
	gSource string
	gErr    error
	samples int
}

// Run samples until ctx is done.
func (s *sampler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.loop(ctx, time.Second, func() {
			n, src, err := goroutines(ctx, s.c)
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.gErr = err
				return
			}
			s.gPeak, s.gSource = max(s.gPeak, n), src
		})
	}()
	s.loop(ctx, s.Every, func() {
		p, err := readProcStatus(s.c.Pid())
		if err != nil {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.peak.RSSKB = max(s.peak.RSSKB, p.RSSKB)
		s.peak.Threads = max(s.peak.Threads, p.Threads)
		s.samples++
	})
	wg.Wait()
	return ctx.Err()
}

// loop calls f now and then every d until ctx is done, on a ticker it stops itself.
func (s *sampler) loop(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// memory is what the report says about consultd's memory and goroutines.
type memory struct {
	Before, End    procStatus // before the run, and once it drained
	PeakRSSKB      int64      // the largest sampled RSS during the run
	PeakThreads    int64
	Samples        int
	GBefore, GPeak int64
	GEnd           int64
	GSource        string // where the goroutine counts come from
	GErr           error
	SampleEvery    time.Duration
	HWMKB          int64 // VmHWM at the end: the kernel's own peak, since start
}

func (s *sampler) result() memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return memory{PeakRSSKB: s.peak.RSSKB, PeakThreads: s.peak.Threads, Samples: s.samples,
		GPeak: s.gPeak, GSource: s.gSource, GErr: s.gErr, SampleEvery: s.Every}
}
