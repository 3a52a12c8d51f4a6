package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// faultKind is one way the harness breaks the service.
type faultKind int

const (
	killReplica faultKind = iota // SIGKILL a consultd, start it again after Down
	killRedis                    // SIGKILL redis-server, start it again after Down
	termRedis                    // SIGTERM redis-server, start it again after Down
	stallRedis                   // SIGSTOP redis-server, SIGCONT after Down
)

var faultKinds = []faultKind{killReplica, killRedis, termRedis, stallRedis}

func (k faultKind) String() string {
	return [...]string{"replica SIGKILL + restart", "redis SIGKILL + restart", "redis SIGTERM + restart", "redis SIGSTOP … SIGCONT"}[k]
}

// fault is one planned fault.
type fault struct {
	At      time.Duration // after the load started
	Kind    faultKind
	Replica int           // which replica, for killReplica
	Down    time.Duration // how long the process stays down, or stopped
}

// injected is a fault as it happened: when it began and when the service was
// whole again (the process restarted and answering, or resumed), both after the
// load started.
type injected struct {
	fault
	Began, Ended time.Duration
	Target       string
	Err          error
}

// Fault plan timings. A stall outlasts both the clients' timeout (attemptTimeout),
// so that clients give up while their comment still waits in Redis's socket, and
// consultd's go-redis read timeout (5 s, go-redis v9.23's default), so that
// go-redis gives up on a pipeline Redis has not yet run and sends it again: with
// 4 s stalls nothing is ever resent and the harness cannot see that fault.
const (
	faultCalm     = 3 * time.Second // between two faults, and at the end of the load
	faultSettle   = time.Second     // a start's own time, before the calm counts
	stallMin      = 6 * time.Second
	stallSpread   = 2 * time.Second
	replicaDown   = time.Second
	redisDownBase = 500 * time.Millisecond
)

// plan spreads faults over a load of length d: the kinds in turn (a replica,
// Redis killed, a stall, a replica, Redis terminated, a stall, …), each followed
// by a calm, none running into the last faultCalm of the load, so that the last
// retries meet a whole service. The replica and the lengths are drawn from rng.
func plan(d time.Duration, replicas int, rng *rand.Rand) []fault {
	order := []faultKind{killReplica, killRedis, stallRedis, killReplica, termRedis, stallRedis}
	var out []fault
	at := 2 * time.Second
	for i := 0; ; i++ {
		f := fault{At: at, Kind: order[i%len(order)]}
		switch f.Kind {
		case killReplica:
			f.Replica = rng.IntN(replicas)
			f.Down = replicaDown + time.Duration(rng.Int64N(int64(time.Second)))
		case killRedis, termRedis:
			f.Down = redisDownBase + time.Duration(rng.Int64N(int64(time.Second)))
		case stallRedis:
			f.Down = stallMin + time.Duration(rng.Int64N(int64(stallSpread)))
		}
		f.Down = f.Down.Round(100 * time.Millisecond)
		end := at + f.Down + faultSettle
		if end > d-faultCalm {
			return out
		}
		out = append(out, f)
		at = end + faultCalm
	}
}

// injector carries out a plan, one fault after another: each ends (the process
// is back) before the next begins, so that what the check finds can be told
// apart fault by fault in the log.
type injector struct {
	plan     []fault
	redis    *redisServer
	replicas []*replica
	log      io.Writer

	done []injected
}

// Run injects the faults at their times after start and returns when the last
// one is over or ctx ends. A stalled Redis is resumed even when ctx ends
// half-way, because a stopped process never acts on the SIGTERM that stops it; a
// killed one is not started again once ctx has ended.
func (j *injector) Run(ctx context.Context, start time.Time) {
	for _, f := range j.plan {
		if !sleep(ctx, time.Until(start.Add(f.At))) {
			return
		}
		in := injected{fault: f, Began: time.Since(start)}
		in.Target, in.Err = j.inject(ctx, f)
		in.Ended = time.Since(start)
		j.done = append(j.done, in)
		status := "ok"
		if in.Err != nil {
			status = in.Err.Error()
		}
		fmt.Fprintf(j.log, "  t+%5.1fs  %-26s %-10s down %-5s back at t+%.1fs  %s\n",
			in.Began.Seconds(), f.Kind, in.Target, f.Down, in.Ended.Seconds(), status)
		if ctx.Err() != nil {
			return
		}
	}
}

func (j *injector) inject(ctx context.Context, f fault) (string, error) {
	switch f.Kind {
	case killReplica:
		r := j.replicas[f.Replica%len(j.replicas)]
		r.kill()
		if !sleep(ctx, f.Down) {
			return r.name, nil // the harness is stopping: no point starting it again
		}
		return r.name, r.start(ctx)
	case killRedis, termRedis:
		j.redis.kill(f.Kind == termRedis)
		if !sleep(ctx, f.Down) {
			return "redis", nil
		}
		return "redis", j.redis.start(ctx)
	case stallRedis:
		if err := j.redis.stall(); err != nil {
			return "redis", err
		}
		sleep(ctx, f.Down)
		j.redis.resume()
		return "redis", nil
	}
	return "", fmt.Errorf("unknown fault %d", f.Kind)
}
