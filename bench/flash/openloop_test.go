package main

import (
	"context"
	"testing"
	"time"
)

// fakeClock moves only when the scheduler waits: SleepUntil jumps to the time
// asked for, plus Overshoot (a generator short of CPU wakes late), and answers
// the requests whose answer is due by then.
type fakeClock struct {
	now       time.Time
	Overshoot func(call int) time.Duration
	calls     int
	pending   []answerAt
}

type answerAt struct {
	at   time.Time
	done func()
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.calls++
	if t.After(c.now) {
		c.now = t
	}
	if c.Overshoot != nil {
		c.now = c.now.Add(c.Overshoot(c.calls))
	}
	var left []answerAt
	for _, p := range c.pending {
		if p.at.After(c.now) {
			left = append(left, p)
		} else {
			p.done()
		}
	}
	c.pending = left
	return nil
}

// answerAfter has the request answered d after now; d < 0: never.
func (c *fakeClock) answerAfter(d time.Duration, done func()) {
	if d == 0 {
		done()
		return
	}
	if d > 0 {
		c.pending = append(c.pending, answerAt{c.now.Add(d), done})
		return
	}
	c.pending = append(c.pending, answerAt{c.now.Add(1000 * time.Hour), done})
}

func TestOpenLoopAccounting(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rate float64
		dur  time.Duration
		max  int64
		// service is how long the server takes to answer; -1: it never does.
		service   time.Duration
		overshoot func(call int) time.Duration
		want      offerStats
	}{
		{
			name: "answers at once: everything offered on time",
			rate: 100, dur: time.Second, max: 10, service: 0,
			want: offerStats{Scheduled: 100, Offered: 100, PeakInFlight: 1},
		},
		{
			name: "no answers: the in-flight bound, then nothing more is offered",
			rate: 100, dur: time.Second, max: 10, service: -1,
			want: offerStats{Scheduled: 100, Offered: 10, NotOffered: 90, PeakInFlight: 10},
		},
		{
			name: "answers in 3.5 ms at 1000/s: four in flight, under a bound of five",
			rate: 1000, dur: 2 * time.Second, max: 5, service: 3500 * time.Microsecond,
			want: offerStats{Scheduled: 2000, Offered: 2000, PeakInFlight: 4},
		},
		{
			name: "answers in 3.5 ms at 1000/s with a bound of two: half not offered",
			rate: 1000, dur: time.Second, max: 2, service: 3500 * time.Microsecond,
			// 0 and 1 fill the bound; 2 and 3 are due while both are out; 0 is
			// answered at 3.5 ms and 1 at 4.5 ms, so 4 and 5 go out; and so on.
			want: offerStats{Scheduled: 1000, Offered: 500, NotOffered: 500, PeakInFlight: 2},
		},
		{
			name: "a generator that wakes 20 ms late every 100th wait: late, but still offered",
			rate: 1000, dur: time.Second, max: 100, service: 0,
			overshoot: func(call int) time.Duration {
				if call%100 == 0 {
					return 20 * time.Millisecond
				}
				return 0
			},
			// The 100th wait (request 99) wakes 20 ms late, so request 99 is 20 ms
			// late and 100 … 118 are 19 … 1 ms late: 10 of them more than 10 ms. So
			// for the stalls at 99, 199, … 899; the last, at 999, has no followers.
			want: offerStats{Scheduled: 1000, Offered: 1000, Late: 9*10 + 1, MaxLate: 20 * time.Millisecond, PeakInFlight: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: t0, Overshoot: tt.overshoot}
			var launched []int64
			l := &openLoop{Rate: tt.rate, Duration: tt.dur, MaxInFlight: tt.max, LateAfter: 10 * time.Millisecond, Clock: clk}
			l.Launch = func(i int64, due time.Time, done func()) {
				launched = append(launched, i)
				if want := t0.Add(time.Duration(float64(i) * float64(time.Second) / tt.rate)); !due.Equal(want) {
					t.Fatalf("request %d due at %s, want %s", i, due, want)
				}
				clk.answerAfter(tt.service, done)
			}
			got := l.Run(context.Background())
			if got.NotOffered+got.Offered != got.Scheduled {
				t.Errorf("offered %d + not offered %d != scheduled %d", got.Offered, got.NotOffered, got.Scheduled)
			}
			if l.InFlight() != int64(len(clk.pending)) {
				t.Errorf("InFlight() = %d, want %d", l.InFlight(), len(clk.pending))
			}
			for _, p := range clk.pending {
				p.done()
			}
			l.Wait() // returns: every launched request called done
			if l.InFlight() != 0 {
				t.Errorf("InFlight() = %d after every done", l.InFlight())
			}
			if int64(len(launched)) != got.Offered {
				t.Errorf("Launch called %d times, Offered = %d", len(launched), got.Offered)
			}
			got.Rate, got.Duration, got.Start, got.Last = 0, 0, time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenLoopOfferedRate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    offerStats
		want float64
	}{
		{"on schedule", offerStats{Duration: 10 * time.Second, Offered: 1000, Start: t0, Last: t0.Add(9 * time.Second)}, 100},
		{"fell behind: the span is longer", offerStats{Duration: 10 * time.Second, Offered: 1000, Start: t0, Last: t0.Add(20 * time.Second)}, 50},
		{"nothing", offerStats{}, 0},
	}
	for _, tt := range tests {
		if got := tt.s.OfferedRate(); got != tt.want {
			t.Errorf("%s: OfferedRate() = %g, want %g", tt.name, got, tt.want)
		}
	}
}

func TestOpenLoopStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{now: time.Unix(0, 0)}
	n := 0
	l := &openLoop{Rate: 100, Duration: time.Second, MaxInFlight: 10, LateAfter: time.Millisecond, Clock: clk}
	l.Launch = func(i int64, due time.Time, done func()) {
		n++
		done()
		if n == 5 {
			cancel()
		}
	}
	got := l.Run(ctx)
	if got.Offered != 5 || got.NotOffered != 0 {
		t.Errorf("after a cancel at the 5th launch: offered %d, not offered %d; want 5, 0", got.Offered, got.NotOffered)
	}
}

func TestRealClockSleepUntil(t *testing.T) {
	c := newRealClock()
	start := time.Now()
	if err := c.SleepUntil(context.Background(), start.Add(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Errorf("returned after %s, before the time asked", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SleepUntil(ctx, time.Now().Add(time.Hour)); err == nil {
		t.Error("a cancelled context: SleepUntil returned nil")
	}
}
