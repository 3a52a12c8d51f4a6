package handlers

import (
	"testing"
	"time"
)

func TestLogThrottle(t *testing.T) {
	var l logThrottle
	t0 := time.Unix(1000, 0)
	if _, ok := l.allow(t0); !ok {
		t.Fatal("first line refused")
	}
	for i := 0; i < 5; i++ {
		if _, ok := l.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("line %d within the second let through", i)
		}
	}
	if n, ok := l.allow(t0.Add(1500 * time.Millisecond)); !ok || n != 5 {
		t.Fatalf("after the second: %d, %v; want 5 unlogged, true", n, ok)
	}
}
