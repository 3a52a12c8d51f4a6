package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"consult/comments"
)

// A cursor anywhere, even past the largest id there can be, pages without
// error; one that is not a stream id is ErrBadCursor.
func TestPageCursors(t *testing.T) {
	now := time.Now()
	s, _, _, d := setup(t, now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	for _, b := range []string{"一", "二", "三"} {
		if _, err := s.Submit(ctx, comments.Submission{DraftID: d.ID, Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	all, _, err := s.Page(ctx, d.ID, "", 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("page %d %v", len(all), err)
	}
	for after, want := range map[string]int{
		"0-0": 3, all[0].Entry: 2, all[2].Entry: 0, "99999999999999-0": 0,
		"18446744073709551615-18446744073709551615": 0, "18446744073709551614-18446744073709551615": 0,
	} {
		cs, next, err := s.Page(ctx, d.ID, after, 10)
		if err != nil || len(cs) != want || next != "" {
			t.Errorf("after %s: %d comments, next %q, %v; want %d", after, len(cs), next, err, want)
		}
	}
	one, next, err := s.Page(ctx, d.ID, "", 1)
	if err != nil || len(one) != 1 || next != all[0].Entry {
		t.Fatalf("limit 1: %v %q %v", one, next, err)
	}
	for _, bad := range []string{"x", "1-", "-1", "1-2-3", "18446744073709551616-0"} {
		if _, _, err := s.Page(ctx, d.ID, bad, 10); !errors.Is(err, comments.ErrBadCursor) {
			t.Errorf("after %q: %v, want ErrBadCursor", bad, err)
		}
	}
}
