package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Info lines wait in the buffer; a warning flushes them and itself, in order;
// the loop writes what waits within flushEvery; Close writes the rest.
func TestLogWriterFlushes(t *testing.T) {
	var out syncBuffer
	w := newLogWriter(&out)
	log := slog.New(flushingHandler{Handler: slog.NewTextHandler(w, nil), w: w}).With("k", "v")
	log.Info("first")
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	log.Warn("second")
	got := out.String()
	if i, j := strings.Index(got, "first"), strings.Index(got, "second"); i < 0 || j < i || !strings.Contains(got, "k=v") {
		t.Fatalf("after a warning: %q", got)
	}
	log.Info("third")
	deadline := time.Now().Add(10 * flushEvery)
	for !strings.Contains(out.String(), "third") {
		if time.Now().After(deadline) {
			t.Fatal("an info line was not flushed by the loop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("fourth")
	w.Close()
	if !strings.Contains(out.String(), "fourth") {
		t.Fatal("Close did not flush")
	}
}
