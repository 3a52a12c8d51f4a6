package redistest

import (
	"context"
	"testing"
)

func TestStartServesAndPersists(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["appendfsync"] != "always" {
		t.Fatalf("appendfsync = %q, want always", got["appendfsync"])
	}
}
