package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSamePath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/d/plan": "/d/plan", "//evil.example/x": "/evil.example/x", `/\evil.example`: "/evil.example",
		"///x": "/x", "/d/a b": "/d/a%20b",
	} {
		if got := samePath(in); got != want {
			t.Errorf("samePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The language link of a 404 for //host/… stays on this site.
func TestNotFoundLanguageLinkStaysHere(t *testing.T) {
	e := newEnv(t, time.Now)
	r := e.client().get("//evil.example/x")
	if r.Code != http.StatusNotFound || strings.Contains(r.body, `href="//evil.example`) || !strings.Contains(r.body, `href="/evil.example/x?lang=`) {
		t.Fatalf("status %d, language link off the site or missing: %s", r.Code, r.body)
	}
}
