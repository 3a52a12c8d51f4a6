package handlers

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/labstack/echo/v4"

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
	if got, want := DraftPath("plan"), s.paths.url(routeDraft, "plan"); got != want {
		t.Errorf("DraftPath = %q, the table's %q", got, want)
	}
	if got, want := DigestFilePath("plan", "final", "comments.csv"), s.paths.url(routeDigestFile, "plan", "final", "comments.csv"); got != want {
		t.Errorf("DigestFilePath = %q, the table's %q", got, want)
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

// TestHeadAndOptions: HEAD on a page is its GET's status and headers; OPTIONS
// on an API path says what the path allows, to anyone; a path that is no
// route is 404 whatever the method.
func TestHeadAndOptions(t *testing.T) {
	env := newRouteEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodHead, "/", 200, ""},
		{http.MethodHead, "/d/plan", 200, ""},
		{http.MethodHead, "/d/plan/comment", 200, ""},
		{http.MethodHead, "/receipts/" + env.code, 200, ""},
		{http.MethodHead, "/static/" + env.asset, 200, ""},
		{http.MethodHead, "/d/nope", 404, ""},
		{http.MethodOptions, "/api/v1/drafts", 204, "GET, OPTIONS, POST"},
		{http.MethodOptions, "/api/v1/drafts/plan", 204, "GET, OPTIONS"},
		{http.MethodOptions, "/api/v1/drafts/plan/comments", 204, "GET, OPTIONS, POST"},
		{http.MethodOptions, "/api/v1/drafts/plan/limits", 204, "OPTIONS, PUT"},
		{http.MethodOptions, "/api/v1/nowhere", 404, ""},
		{http.MethodGet, "/api/v1/nowhere", 404, ""},
		{http.MethodPost, "/api/v1/nowhere", 404, ""},
	} {
		rec := httptest.NewRecorder()
		env.e.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get(echo.HeaderAllow) != tc.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, %q", tc.method, tc.path, rec.Code, rec.Header().Get(echo.HeaderAllow), tc.status, tc.allow)
		}
		if tc.method == http.MethodHead && tc.status == 200 {
			get := httptest.NewRecorder()
			env.e.ServeHTTP(get, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if a, b := rec.Header().Get("Content-Type"), get.Header().Get("Content-Type"); a != b {
				t.Errorf("HEAD %s: Content-Type %q, GET's %q", tc.path, a, b)
			}
		}
	}
}
