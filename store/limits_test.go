package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/internal/redistest"
)

// TestLimiter: a client gets its burst, then waits; another client, another
// draft and the look-ups keep their own budgets; a draft's own rate wins.
func TestLimiter(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	testLimiter(t, rdb)
}

// TestLimiterCluster: the same on a three-node Cluster, where a script that
// touched keys of two slots would fail.
func TestLimiterCluster(t *testing.T) {
	rdb := redistest.StartCluster(t).Client(t)
	testLimiter(t, rdb)
}

func testLimiter(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	l := NewLimiter(rdb, LimiterConfig{Comments: Rate{Burst: 3, PerHour: 3600}, Lookups: Rate{Burst: 2, PerHour: 60}})
	allow := func(what string, wantOK bool, f func() (time.Duration, error)) time.Duration {
		t.Helper()
		wait, err := f()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if (wait == 0) != wantOK {
			t.Fatalf("%s: wait %v, want allowed=%v", what, wait, wantOK)
		}
		return wait
	}
	comment := func(draft, client string, perHour int) func() (time.Duration, error) {
		return func() (time.Duration, error) { return l.AllowComment(ctx, draft, client, perHour) }
	}
	for i := range 3 {
		allow("burst "+string(rune('1'+i)), true, comment("d1", "client-a", 0))
	}
	wait := allow("past the burst", false, comment("d1", "client-a", 0))
	if wait > time.Second+100*time.Millisecond {
		t.Errorf("wait %v, want at most a second at 3600 an hour", wait)
	}
	allow("another client", true, comment("d1", "client-b", 0))
	allow("another draft", true, comment("d2", "client-a", 0))
	allow("look-ups have their own budget", true, func() (time.Duration, error) { return l.AllowLookup(ctx, "client-a") })

	// A draft's own SubmitsPerHour: 10 an hour is a burst of 1, then one each 6 minutes.
	allow("draft rate, first", true, comment("d3", "client-a", 10))
	wait = allow("draft rate, second", false, comment("d3", "client-a", 10))
	if wait < 5*time.Minute || wait > 6*time.Minute+time.Second {
		t.Errorf("wait %v, want about 6 minutes", wait)
	}

	allow("lookup 2", true, func() (time.Duration, error) { return l.AllowLookup(ctx, "client-a") })
	if wait := allow("lookup 3", false, func() (time.Duration, error) { return l.AllowLookup(ctx, "client-a") }); wait < 50*time.Second {
		t.Errorf("look-up wait %v, want about a minute", wait)
	}

	// The keys carry the draft's hash tag and expire; nothing else is kept.
	keys := allKeys(t, rdb)
	for _, k := range keys {
		if strings.Contains(k, ":rl:c:") && !strings.Contains(k, "consult:{d") {
			t.Errorf("comment limit key %q lacks the draft's hash tag", k)
		}
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q: TTL %v %v, want one", k, ttl, err)
		}
	}
	if len(keys) != 5 { // d1 a, d1 b, d2 a, d3 a, look-ups a
		t.Errorf("keys %q", keys)
	}
}

func allKeys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "*", 100).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex // ForEachMaster runs the nodes at once
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, n)
		})
	case *redis.Client:
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestLimiterDown: with Redis gone a check fails as an outage, not as a refusal.
func TestLimiterDown(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	l := NewLimiter(rdb, LimiterConfig{})
	rs.Proc.Kill()
	_, err := l.AllowComment(context.Background(), "d1", "c", 0)
	var u interface{ Unavailable() bool }
	if !errors.As(err, &u) || !u.Unavailable() || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want one marked unavailable", err)
	}
}

func TestProofsSpendOnce(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	p := NewProofs(rdb)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	for _, tc := range []struct {
		draft, id string
		want      bool
	}{
		{"d1", "p1", true},
		{"d1", "p1", false},
		{"d2", "p1", true}, // another draft's proof with the same id
		{"d1", "p2", true},
	} {
		ok, err := p.Spend(ctx, tc.draft, tc.id, exp)
		if err != nil || ok != tc.want {
			t.Fatalf("Spend(%s, %s) = %v, %v; want %v", tc.draft, tc.id, ok, err, tc.want)
		}
	}
	if ttl := rdb.PTTL(ctx, proofKey("d1", "p1")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("proof TTL %v, want until it expires", ttl)
	}
}

func TestSecretSharedAndKept(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	a, err := Secret(ctx, rs.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Secret(ctx, rs.Client(t)) // another replica
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("secrets %x and %x, want one 32-byte secret", a, b)
	}
}
