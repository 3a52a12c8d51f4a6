package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// clock is what the open-loop scheduler reads time from and waits on, so that
// its accounting is tested by moving time rather than by sleeping.
type clock interface {
	Now() time.Time
	// SleepUntil returns once t has passed, or with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

// realClock is the wall clock, with one timer reused across waits.
type realClock struct{ timer *time.Timer }

func newRealClock() *realClock {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &realClock{timer: t}
}

func (c *realClock) Now() time.Time { return time.Now() }

func (c *realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	c.timer.Reset(d)
	select {
	case <-ctx.Done():
		c.timer.Stop()
		return ctx.Err()
	case <-c.timer.C:
		return nil
	}
}

// openLoop offers requests at a fixed rate, whatever the server does: request i
// is due at start + i/Rate and is launched at its due time (or as soon after as
// the generator gets there) without waiting for earlier ones to return. That is
// what a crowd does and what a closed-loop generator such as wrk cannot: wrk
// sends the next request only when an answer came back, so a slow server slows
// its own load down.
//
// The generator holds at most MaxInFlight requests; a request due while that many
// are outstanding is not sent and is counted as not offered, so that the report
// says how much of the rate really reached the server.
type openLoop struct {
	Rate        float64       // requests per second
	Duration    time.Duration // how long the schedule runs
	MaxInFlight int64
	// LateAfter: a request launched later than this after its due time (the
	// generator itself was starved of CPU) is counted as late.
	LateAfter time.Duration
	Clock     clock
	// Launch starts request i, due at due, without blocking, and calls done once
	// it has an answer or gave up.
	Launch func(i int64, due time.Time, done func())

	inFlight atomic.Int64
	wg       sync.WaitGroup
}

// InFlight is the number of requests launched and not yet answered.
func (l *openLoop) InFlight() int64 { return l.inFlight.Load() }

// Wait waits until every launched request is done.
func (l *openLoop) Wait() { l.wg.Wait() }

// offerStats is what an open loop offered.
type offerStats struct {
	Rate         float64       // the rate asked for
	Duration     time.Duration // the schedule's length
	Scheduled    int64         // requests due within Duration: Rate × Duration
	Offered      int64         // launched
	NotOffered   int64         // due while MaxInFlight were outstanding: never sent
	Late         int64         // launched more than LateAfter after the due time
	MaxLate      time.Duration // the latest launch, after its due time
	PeakInFlight int64
	Start        time.Time // when request 0 was due
	Last         time.Time // when the last request was launched or given up
}

// Span is how long offering took: the schedule's length, or longer when the
// generator fell behind and caught up late.
func (s offerStats) Span() time.Duration {
	return max(s.Duration, s.Last.Sub(s.Start))
}

// OfferedRate is the rate that really reached the server.
func (s offerStats) OfferedRate() float64 {
	if s.Span() <= 0 {
		return 0
	}
	return float64(s.Offered) / s.Span().Seconds()
}

// Run offers the schedule and returns once every request has been launched or
// counted as not offered, not when the last answer arrived: Wait does that. A
// cancelled ctx stops it early; what was offered until then is returned.
func (l *openLoop) Run(ctx context.Context) offerStats {
	st := offerStats{Rate: l.Rate, Duration: l.Duration}
	if l.Rate <= 0 {
		return st
	}
	st.Scheduled = int64(l.Rate * l.Duration.Seconds())
	st.Start = l.Clock.Now()
	st.Last = st.Start
	done := func() { l.inFlight.Add(-1); l.wg.Done() }
	for i := int64(0); i < st.Scheduled; i++ {
		// Computed from the start each time, not by adding an interval, so that
		// rounding never drifts the rate.
		due := st.Start.Add(time.Duration(float64(i) * float64(time.Second) / l.Rate))
		if err := l.Clock.SleepUntil(ctx, due); err != nil {
			break
		}
		now := l.Clock.Now()
		st.Last = now
		n := l.inFlight.Load()
		if n >= l.MaxInFlight {
			st.NotOffered++
			continue
		}
		late := now.Sub(due)
		if late > l.LateAfter {
			st.Late++
		}
		st.MaxLate = max(st.MaxLate, late)
		st.PeakInFlight = max(st.PeakInFlight, n+1)
		l.inFlight.Add(1)
		l.wg.Add(1)
		st.Offered++
		l.Launch(i, due, done)
	}
	return st
}
