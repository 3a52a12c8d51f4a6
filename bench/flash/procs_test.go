package main

import "testing"

func TestParseProcStatus(t *testing.T) {
	const status = "Name:\tconsultd\nVmPeak:\t 1300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   65432 kB\nThreads:\t12\n"
	got := parseProcStatus(status)
	if want := (procStatus{RSSKB: 65432, HWMKB: 81234, Threads: 12}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMissing(t *testing.T) {
	n, ex := missing([]string{"a", "b", "c", "d"}, []string{"b", "x", "d"}, 1)
	if n != 2 || len(ex) != 1 || ex[0] != "a" {
		t.Errorf("missing = %d %q, want 2 [a]", n, ex)
	}
}
