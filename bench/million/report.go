package main

import (
	"fmt"
	"strings"
	"time"

	"consult/bench/internal/results"
)

// The floors.
const (
	maxMemoryGrowth  = 1.5 // peak memory at the largest size over the smallest
	maxBuildOverRead = 3.0
)

type report struct {
	Opts       options
	Results    []sizeResult
	Base       int64 // Redis used_memory before the fill
	Raw        [2]int
	Start, End time.Time
	Machine    results.Machine // read at the start, with its load average
	LoadAfter  string
	Redis      string
}

type floor struct {
	What, Measured string
	OK             bool
}

func (r report) floors() []floor {
	var fs []floor
	if len(r.Results) >= 2 {
		a, b := r.Results[0], r.Results[len(r.Results)-1]
		ab, bb := a.build(), b.build()
		live := float64(bb.LiveHeap) / float64(ab.LiveHeap)
		rss := float64(bb.VmHWM) / float64(ab.VmHWM)
		fs = append(fs,
			floor{fmt.Sprintf("build live heap (90th percentile of the collections) at %s ≤ %.1f× at %s", count(b.Comments), maxMemoryGrowth, count(a.Comments)),
				fmt.Sprintf("%.2f× (%s, then %s)", live, mib(ab.LiveHeap), mib(bb.LiveHeap)), live <= maxMemoryGrowth},
			floor{fmt.Sprintf("build peak RSS (VmHWM) at %s ≤ %.1f× at %s", count(b.Comments), maxMemoryGrowth, count(a.Comments)),
				fmt.Sprintf("%.2f× (%s, then %s)", rss, mib(ab.VmHWM), mib(bb.VmHWM)), rss <= maxMemoryGrowth})
	}
	for _, s := range r.Results {
		x := s.build().Took.Seconds() / s.floor().Seconds()
		fs = append(fs, floor{fmt.Sprintf("build ≤ %.0f× the read floor at %s", maxBuildOverRead, count(s.Comments)),
			fmt.Sprintf("%.2f× (%s over %s)", x, secs(s.build().Took), secs(s.floor())), x <= maxBuildOverRead})
	}
	return fs
}

func (r report) failures() []string {
	var out []string
	for _, f := range r.floors() {
		if !f.OK {
			out = append(out, f.What+": "+f.Measured)
		}
	}
	return out
}

func (r report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("## Digest of a million comments\n\n")
	p("Written by `make bench-million` (bench/million); regenerate it rather than editing it.\n\n")
	p("- Command: `go run ./bench/million -sizes %s -c %d -workers %d`\n", joinInts(r.Opts.Sizes), r.Opts.Concurrency, r.Opts.Workers)
	p("- Date: %s to %s (UTC), %s in all\n", r.Start.UTC().Format("2006-01-02 15:04:05"), r.End.UTC().Format("15:04:05"),
		r.End.Sub(r.Start).Round(time.Second))
	p("- Machine: %s; Go %s; redis-server %s\n", r.Machine.Summary(), r.Machine.Go, r.Redis)
	p("- Load average (1, 5, 15 min) before: %s; after: %s\n\n", r.Machine.LoadAvg, r.LoadAfter)
	p("One draft (24 articles) is filled through `store.Comments.Submit`, in process, %d at a time, with %d comment workers "+
		"settling the intake, on a redis-server started like consultd's embedded one but with `appendfsync everysec` "+
		"(the fill is setup; reading is the same in either mode). Each comment is like the intake benchmark's: a 158-character "+
		"body, a name, a contact, a section, a category: %d bytes of text, %d as the JSON a client posts. "+
		"The intake runs with its per-draft caps off (`CONSULT_LIMITS=off`), as load tests do. At each size, three child processes (GOGC=400, as consultd "+
		"runs) read the range three times and build the digest twice, interleaved:\n\n", r.Opts.Concurrency, r.Opts.Workers, r.Raw[0], r.Raw[1])
	p("- **read floor**: `store.Comments.Each` over the range with a callback that only counts; the fastest of the three reads;\n")
	p("- **build**: `notify.Build` over the same range (reading and writing each comment to its section's spill file), then " +
		"the text, HTML and CSV digests written to files in one pass (`Digest.WriteAll`): the most any build does (the " +
		"scheduler stops rendering once the e-mail would pass its size limit, and a download renders one file); live heap is what " +
		"the collector found live after each collection (`/gc/heap/live:bytes`), its 90th percentile and its largest (a largest " +
		"value grows with the number of collections, and a collection that waits for a core counts more live), peak heap `HeapInuse` sampled every 10 ms (with GOGC=400 it runs up to " +
		"five times the live heap, as the collector paces itself), peak RSS the child's `VmHWM`; the faster build's time, the " +
		"higher build's memory. Past a few hundred MB the render is bound by " +
		"writing the files to disk.\n\n")

	p("| comments | fill | read floor | build (spill + render) | build / floor | live heap (p90, max) | peak heap | peak RSS | text | HTML | CSV | Redis per comment |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Results {
		b := s.build()
		p("| %s | %s (%.0f/s) | %s | %s (%s + %s) | %.2f× | %s | %s | %s | %s | %s | %s | %s |\n",
			count(s.Comments), secs(s.Fill), float64(s.Filled)/s.Fill.Seconds(), secs(s.floor()),
			secs(b.Took), secs(b.Spill), secs(b.Render), b.Took.Seconds()/s.floor().Seconds(),
			mib(b.LiveHeap)+", "+mib(b.LiveMax), mib(b.PeakHeap), mib(b.VmHWM), mb(b.TextBytes), mb(b.HTMLBytes), mb(b.CSVBytes),
			fmt.Sprintf("%d B", (s.RedisUsed-r.Base)/int64(s.Comments)))
	}
	p("\nEvery run, in seconds (reads and builds interleaved):")
	for _, s := range r.Results {
		var reads, builds []string
		var heap, rss uint64
		for _, x := range s.Reads {
			reads = append(reads, fmt.Sprintf("%.1f", x.Took.Seconds()))
			heap, rss = max(heap, x.PeakHeap), max(rss, x.VmHWM)
		}
		for _, x := range s.Builds {
			builds = append(builds, fmt.Sprintf("%.1f", x.Took.Seconds()))
		}
		p(" at %s, reads %s, builds %s (the reads alone peaked at %s heap, %s RSS);", count(s.Comments),
			strings.Join(reads, ", "), strings.Join(builds, ", "), mib(heap), mib(rss))
	}
	p("\nRedis per comment is `used_memory` after the fill, less before, over the comments stored (the stream entry, its "+
		"receipt record, the consumer group's state), beside the %d bytes of text a comment carries.\n\n", r.Raw[0])

	p("### Floors (the issue's)\n\n| floor | measured | |\n|---|---:|---|\n")
	for _, f := range r.floors() {
		p("| %s | %s | **%s** |\n", f.What, f.Measured, map[bool]string{true: "PASS", false: "FAIL"}[f.OK])
	}
	return b.String()
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
func mb(n int64) string           { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
