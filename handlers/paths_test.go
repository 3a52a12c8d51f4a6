package handlers

import (
	"io/fs"
	"regexp"
	"testing"

	"consult/static"
)

// TestRoutePaths: URLs are built from the route table by name, escaped, and a
// name or a count of parameters that fits no route is an error.
func TestRoutePaths(t *testing.T) {
	s, _, err := newServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params []string
		want   string
	}{
		{routeList, nil, "/"},
		{routeDraft, []string{"plan"}, "/d/plan"},
		{routeComment, []string{"plan"}, "/d/plan/comment"},
		{routeReceipt, []string{"12-AB/CD?x"}, "/receipts/12-AB%2FCD%3Fx"},
		{routeRevoke, []string{"t1"}, "/account/tokens/t1/revoke"},
		{routeAPIDraft, []string{"plan"}, "/api/v1/drafts/plan"},
		{routeDigestFile, []string{"plan", "final-1", "comments.csv"}, "/digests/plan/final-1/comments.csv"},
	} {
		if got, err := s.paths.path(tc.name, tc.params...); err != nil || got != tc.want {
			t.Errorf("path(%q, %q) = %q, %v; want %q", tc.name, tc.params, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"no-such-route"}, {routeDraft}, {routeList, "x"}, {routeComment, "a", "b"}} {
		if got, err := s.paths.path(bad[0], bad[1:]...); err == nil {
			t.Errorf("path(%q) = %q, want an error", bad, got)
		}
	}
}

// TestNoPathsInTemplates: templates link through {{path "name" …}} (or
// {{asset "name"}}), never to a path spelled by hand.
func TestNoPathsInTemplates(t *testing.T) {
	literal := regexp.MustCompile(`(href|action|src)="/`)
	err := fs.WalkDir(static.Templates(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.Templates(), name)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllIndex(b, -1) {
			t.Errorf("%s: a path spelled by hand at byte %d: %.60s", name, m[0], b[m[0]:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
