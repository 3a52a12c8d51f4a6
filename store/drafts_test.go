package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"consult/drafts"
	"consult/internal/redistest"
	rec "consult/record"
)

func valid(id string, opens, closes time.Time) drafts.Draft {
	return drafts.Draft{ID: id, Title: "办法", Bureau: "司法局", Kind: drafts.KindNormative, Text: "第一条 总则。\n第二条 附则。",
		OpensAt: opens, ClosesAt: closes, DigestRecipients: []string{"a@example.gov.cn"}}
}

func TestStoreImportGetList(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	s := NewDrafts(rdb, func() time.Time { return now })
	if empty, err := s.Empty(ctx); err != nil || !empty {
		t.Fatalf("Empty = %v, %v", empty, err)
	}
	before := redisNow(t, rdb)
	open, err := s.Import(ctx, rec.AdminToken, valid("open-a", now.Add(-time.Hour), now.Add(48*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if open.Ref != 1 || len(open.Sections) != 2 || open.Sections[1].Label != "第二条" ||
		open.CreatedAt.Before(before) || open.CreatedAt.After(redisNow(t, rdb)) || !open.OpensAt.Equal(now.Add(-time.Hour)) {
		t.Fatalf("created %+v", open)
	}
	if _, err := s.Import(ctx, rec.AdminToken, valid("open-a", now, now.Add(time.Hour))); !errors.Is(err, drafts.ErrExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	for _, d := range []drafts.Draft{
		valid("open-b", now.Add(-time.Hour), now.Add(24*time.Hour)),
		valid("soon", now.Add(time.Hour), now.Add(72*time.Hour)),
		valid("done", now.Add(-72*time.Hour), now.Add(-time.Hour)),
	} {
		if _, err := s.Import(ctx, rec.AdminToken, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "open-a")
	if err != nil || got.Title != "办法" || got.Ref != 1 || !got.ClosesAt.Equal(open.ClosesAt) ||
		!got.OpensAt.Equal(open.OpensAt) || !got.CreatedAt.Equal(open.CreatedAt) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, drafts.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := s.Get(ctx, "{evil}"); !errors.Is(err, drafts.ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
	if id, err := s.ByRef(ctx, 3); err != nil || id != "soon" {
		t.Fatalf("ByRef(3) = %q, %v", id, err)
	}
	all, err := s.List(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range all {
		ids = append(ids, d.ID)
	}
	// Open ones by closing time, then upcoming, then closed.
	if want := []string{"open-b", "open-a", "soon", "done"}; len(ids) != 4 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] || ids[3] != want[3] {
		t.Fatalf("List = %v, want %v", ids, want)
	}
	if up, _ := s.List(ctx, now, drafts.StatusUpcoming); len(up) != 1 || up[0].ID != "soon" {
		t.Fatalf("upcoming = %+v", up)
	}
	closed, err := s.ClosedBefore(ctx, now)
	if err != nil || len(closed) != 1 || closed[0] != "done" {
		t.Fatalf("ClosedBefore = %v, %v", closed, err)
	}
	if empty, _ := s.Empty(ctx); empty {
		t.Fatal("Empty after creating")
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	var ve *drafts.ValidationError
	bad := drafts.Draft{ID: "X", Kind: "poem", OpensAt: now, ClosesAt: now.Add(-time.Hour), DigestRecipients: []string{"Boss <b@x.cn>"}}
	if err := bad.Validate(); !errors.As(err, &ve) {
		t.Fatalf("Validate = %v", err)
	}
	for _, f := range []string{"id", "title", "bureau", "text", "kind", "closes_at", "digest_recipients"} {
		if ve.Fields[f].Key == "" {
			t.Errorf("no message for %s: %v", f, ve.Fields)
		}
	}
	if err := valid("good-one", now, now.Add(time.Hour)).Validate(); err != nil {
		t.Fatalf("valid draft refused: %v", err)
	}
}
