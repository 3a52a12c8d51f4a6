// Command million measures the digest of a draft with a million comments (issue
// 6): it fills a draft through the real intake (store.Comments.Submit, in
// process, many at once) with the comment workers running, then measures, at
// 100k and at 1M comments,
//
//   - the read floor: the time merely to read the comments back with Each;
//   - the whole digest build (notify.Build, then the text, HTML and CSV written
//     to files): time, peak heap and peak RSS (VmHWM) of the process, sizes;
//   - Redis's memory per stored comment beside the comment's raw size;
//
// and writes them to bench/RESULTS.md between <!-- million:begin --> and
// <!-- million:end -->, replacing that section or appending it, never touching
// the rest. Each read (three) and each build (two, interleaved) runs in a child
// process of its own, so that its VmHWM is its own. It only uses the exported API of store and notify.
//
// Run it with `make bench-million` (about ten minutes on two cores; the machine
// should be otherwise idle). `go run ./bench/million -h` lists the flags.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/bench/internal/results"
	"consult/comments"
	"consult/drafts"
	"consult/handlers"
	"consult/internal/redisproc"
	"consult/notify"
	"consult/record"
	"consult/store"
)

type options struct {
	Sizes       []int
	Concurrency int
	Workers     int
	Out         string
	Keep        bool
	// The child's flags.
	Phase, Redis, Draft, Until, Dir string
}

func main() {
	o := options{}
	var sizes string
	fs := flag.NewFlagSet("million", flag.ExitOnError)
	fs.StringVar(&sizes, "sizes", "100000,1000000", "comment counts to measure at, ascending; the draft is filled up to each in turn")
	fs.IntVar(&o.Concurrency, "c", 64, "submissions in flight while filling")
	fs.IntVar(&o.Workers, "workers", 2, "comment workers settling the intake while filling (consultd runs 2)")
	fs.StringVar(&o.Out, "out", "bench/RESULTS.md", "the results file (a section of it is written)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (Redis's files)")
	fs.StringVar(&o.Phase, "phase", "", "internal: run one measurement (read or build) and print it as JSON")
	fs.StringVar(&o.Redis, "redis", "", "internal: the Redis address")
	fs.StringVar(&o.Draft, "draft", "", "internal: the draft id")
	fs.StringVar(&o.Until, "until", "", "internal: the stream position the digest covers")
	fs.StringVar(&o.Dir, "dir", "", "internal: where the build writes")
	_ = fs.Parse(os.Args[1:])
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || (len(o.Sizes) > 0 && n <= o.Sizes[len(o.Sizes)-1]) {
			fmt.Fprintln(os.Stderr, "million: -sizes: positive and ascending, e.g. 100000,1000000")
			os.Exit(2)
		}
		o.Sizes = append(o.Sizes, n)
	}
	if o.Phase != "" {
		os.Exit(child(o))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// sizeResult is everything measured at one comment count.
type sizeResult struct {
	Comments  int
	Fill      time.Duration // filling from the previous size to this one
	Filled    int           // comments submitted in Fill
	Reads     []phaseResult
	Builds    []phaseResult
	RedisUsed int64 // used_memory, after settling
}

// phaseResult is what a child reports.
type phaseResult struct {
	Phase    string
	Took     time.Duration
	Spill    time.Duration // build: reading and spilling (notify.Build)
	Render   time.Duration // build: writing the three files
	Comments int
	PeakHeap uint64 // bytes, HeapInuse sampled every 10 ms
	// LiveHeap and LiveMax are the 90th percentile and the largest of the heap
	// the collector found live (/gc/heap/live:bytes), one sample per cycle.
	// The largest grows with the number of cycles, like any maximum of a
	// noisy sample (what a cycle counts live includes what was allocated while
	// it marked, more when it waits for a core), so the floor is on the 90th
	// percentile.
	LiveHeap, LiveMax uint64
	VmHWM             uint64 // bytes, the child's peak resident set
	NumGC             uint32
	TextBytes         int64
	HTMLBytes         int64
	CSVBytes          int64
}

// floor is the fastest read: on a machine shared with other work, the one
// least disturbed.
func (s sizeResult) floor() time.Duration {
	f := s.Reads[0].Took
	for _, r := range s.Reads[1:] {
		f = min(f, r.Took)
	}
	return f
}

// build is the fastest build, for the same reason, with the highest memory
// any build reached: memory is not a matter of luck.
func (s sizeResult) build() phaseResult {
	b := s.Builds[0]
	for _, r := range s.Builds[1:] {
		if r.Took < b.Took {
			b.Took, b.Spill, b.Render = r.Took, r.Spill, r.Render
		}
		b.PeakHeap, b.VmHWM = max(b.PeakHeap, r.PeakHeap), max(b.VmHWM, r.VmHWM)
		b.LiveHeap, b.LiveMax = max(b.LiveHeap, r.LiveHeap), max(b.LiveMax, r.LiveMax)
	}
	return b
}

func run(ctx context.Context, o options) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "consult-million-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	if o.Keep {
		fmt.Fprintln(os.Stderr, "million: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	start := time.Now()
	mach := results.ReadMachine()

	// everysec: the fill is setup, not what is measured, and always would make it
	// the slowest part of the run; reading is the same either way.
	rp, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(tmp, "redis"), AppendFsync: "everysec"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	defer rp.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: rp.Addr, PoolSize: o.Concurrency + 16})
	defer rdb.Close()
	redisVersion := infoField(ctx, rdb, "server", "redis_version")

	ds := store.NewDrafts(rdb, nil)
	cs := newComments(rdb, ds)
	defer cs.Close()
	d, err := makeDraft(ctx, ds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	base, _ := strconv.ParseInt(infoField(ctx, rdb, "memory", "used_memory"), 10, 64)

	// The workers settle the intake as they do in consultd: Each reads accepted
	// comments only.
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range o.Workers {
		w := store.NewWorker(rdb, store.WorkerConfig{Consumer: fmt.Sprintf("million-%d", i), Logger: quiet})
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	defer func() { stopWorkers(); wg.Wait() }()

	var sizes []sizeResult
	filled := 0
	for _, n := range o.Sizes {
		fmt.Printf("million: filling to %d comments…\n", n)
		t0 := time.Now()
		if err := fill(ctx, cs, d, filled, n, o.Concurrency); err != nil {
			fmt.Fprintln(os.Stderr, "million: fill:", err)
			return 1
		}
		if err := settle(ctx, cs, d.ID, n); err != nil {
			fmt.Fprintln(os.Stderr, "million:", err)
			return 1
		}
		r := sizeResult{Comments: n, Fill: time.Since(t0), Filled: n - filled}
		filled = n
		r.RedisUsed, _ = strconv.ParseInt(infoField(ctx, rdb, "memory", "used_memory"), 10, 64)
		head, err := cs.Head(ctx, d.ID)
		if err != nil {
			fmt.Fprintln(os.Stderr, "million:", err)
			return 1
		}
		fmt.Printf("million: %d comments in %s (%.0f/s); Redis used_memory %s\n", n, r.Fill.Round(time.Second),
			float64(r.Filled)/r.Fill.Seconds(), mib(uint64(r.RedisUsed)))
		// The workers stay, idle: they poll an empty stream ten times a second.
		for _, phase := range []string{"read", "build", "read", "build", "read"} {
			pr, err := runChild(ctx, o, phase, rp.Addr, d.ID, head, filepath.Join(tmp, "build"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "million:", err)
				return 1
			}
			if pr.Comments != n {
				fmt.Fprintf(os.Stderr, "million: %s saw %d comments, want %d\n", phase, pr.Comments, n)
				return 1
			}
			fmt.Printf("million: %d comments: %s took %s, peak heap %s, VmHWM %s\n", n, phase, pr.Took.Round(time.Millisecond),
				mib(pr.PeakHeap), mib(pr.VmHWM))
			if phase == "read" {
				r.Reads = append(r.Reads, pr)
			} else {
				r.Builds = append(r.Builds, pr)
			}
		}
		sizes = append(sizes, r)
		if ctx.Err() != nil {
			return 130
		}
	}

	rep := report{Results: sizes, Base: base, Start: start, End: time.Now(), Machine: mach, LoadAfter: results.LoadAvg(),
		Redis: redisVersion, Opts: o, Raw: rawSizes(d)}
	md := rep.markdown()
	fmt.Println()
	fmt.Print(md)
	out := o.Out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := results.WriteSection(out, "million", md); err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	fmt.Println("\nwritten:", out)
	if f := rep.failures(); len(f) > 0 {
		fmt.Fprintln(os.Stderr, "million: floors not met:\n  - "+strings.Join(f, "\n  - "))
		return 1
	}
	return 0
}

// newComments is the one place the bench makes the intake: with the per-draft
// caps off (CONSULT_LIMITS=off), as load tests run it.
func newComments(rdb redis.UniversalClient, ds *store.Drafts) *store.Comments {
	return store.NewComments(rdb, ds, store.IntakeConfig{CapsOff: true})
}

// draftText has 24 articles in 4 chapters, like a county's implementing rules.
func draftText() string {
	var b strings.Builder
	n := 0
	for ch, title := range []string{"总则", "职责分工", "监督管理", "附则"} {
		fmt.Fprintf(&b, "第%s章 %s\n", []string{"一", "二", "三", "四"}[ch], title)
		for range 6 {
			n++
			fmt.Fprintf(&b, "第%d条 本条规定有关事项，具体办法由主管部门另行制定。\n", n)
		}
	}
	return b.String()
}

func makeDraft(ctx context.Context, ds *store.Drafts) (drafts.Draft, error) {
	// Published now by the server (OpensAt left out), open for six hours.
	d, err := ds.Create(ctx, record.System, drafts.Draft{
		ID: "bench-million", Title: "百万条意见基准草案", Bureau: "基准测试局", Kind: drafts.KindRule, Text: draftText(),
		ClosesAt: time.Now().Add(6 * time.Hour), DigestRecipients: []string{"bench@example.gov.cn"},
	})
	return d, err
}

// body is 158 Chinese characters, as in the intake benchmark.
var body = strings.Repeat("建议进一步明确适用范围和执行标准，细化各部门职责分工，加强监督检查。", 5)[:158*3]

// submission is the i-th comment: every section and the whole draft, every
// category, a name and a contact like the intake benchmark's.
func submission(d drafts.Draft, i int) comments.Submission {
	s := comments.Submission{DraftID: d.ID, Body: body, Name: "张三", Contact: "13800000000",
		Category: comments.Categories[i%len(comments.Categories)], PublishName: i%2 == 0}
	if k := i % (len(d.Sections) + 1); k > 0 {
		s.Section = d.Sections[k-1].Anchor
	}
	return s
}

// rawSizes is a comment's size before Redis: its text fields in UTF-8, and the
// JSON a client posts.
func rawSizes(d drafts.Draft) [2]int {
	s := submission(d, 1)
	j, _ := json.Marshal(map[string]any{"section": s.Section, "body": s.Body, "name": s.Name, "contact": s.Contact,
		"category": s.Category, "publish_name": s.PublishName})
	return [2]int{len(s.Section) + len(s.Body) + len(s.Name) + len(s.Contact) + len(s.Category), len(j)}
}

func fill(ctx context.Context, cs *store.Comments, d drafts.Draft, from, to, concurrency int) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				if _, err := cs.Submit(ctx, submission(d, i)); err != nil {
					errs <- fmt.Errorf("comment %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// settle waits until the workers have processed every comment.
func settle(ctx context.Context, cs *store.Comments, draftID string, n int) error {
	for {
		c, err := cs.Counts(ctx, draftID)
		if err != nil {
			return err
		}
		if c.Settled() && c.Stored >= int64(n) {
			return nil
		}
		if c.Settled() {
			return fmt.Errorf("only %d of %d comments stored (%d rejected)", c.Stored, n, c.Rejected)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runChild(ctx context.Context, o options, phase, addr, draftID, until, dir string) (phaseResult, error) {
	self, err := os.Executable()
	if err != nil {
		return phaseResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-phase", phase, "-redis", addr, "-draft", draftID, "-until", until, "-dir", dir)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "GOGC=400") // as consultd runs (see cmd/consultd/main.go)
	out, err := cmd.Output()
	if err != nil {
		return phaseResult{}, fmt.Errorf("%s: %w", phase, err)
	}
	var r phaseResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return phaseResult{}, fmt.Errorf("%s: %w: %q", phase, err, out)
	}
	return r, nil
}

// child runs one measurement and prints it as JSON.
func child(o options) int {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: o.Redis})
	defer rdb.Close()
	ds := store.NewDrafts(rdb, nil)
	cs := newComments(rdb, ds)
	defer cs.Close()
	d, err := ds.Get(ctx, o.Draft)
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	var peak uint64
	var lives []uint64 // the live heap after each collection
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
		var cycles uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			metrics.Read(sample)
			if c := sample[1].Value.Uint64(); c != cycles {
				cycles = c
				lives = append(lives, sample[0].Value.Uint64())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	r := phaseResult{Phase: o.Phase}
	t0 := time.Now()
	switch o.Phase {
	case "read":
		err = cs.Each(ctx, d.ID, o.Until, func(comments.Comment) error { r.Comments++; return nil })
	case "build":
		err = build(ctx, cs, d, o, &r)
	default:
		err = fmt.Errorf("unknown phase %q", o.Phase)
	}
	r.Took = time.Since(t0)
	close(stop)
	<-stopped
	if err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		return 1
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.PeakHeap, r.NumGC, r.VmHWM = peak, ms.NumGC, vmHWM()
	if len(lives) > 0 {
		slices.Sort(lives)
		r.LiveHeap, r.LiveMax = lives[len(lives)*9/10], lives[len(lives)-1]
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// build is what the scheduler does for a job: one pass over the comments into
// the spill, then the three files, here written to disk in full.
func build(ctx context.Context, cs *store.Comments, d drafts.Draft, o options, r *phaseResult) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	t0 := time.Now()
	src := func(fn func(comments.Comment) error) error { return cs.Each(ctx, d.ID, o.Until, fn) }
	dg, err := notify.Build(d, src, notify.Options{Audience: notify.Bureau, BaseURL: "https://consult.example.gov.cn",
		Paths:       notify.Paths{Draft: handlers.DraftPath, File: handlers.DigestFilePath},
		GeneratedAt: time.Now(), Until: o.Until, Dir: o.Dir})
	if err != nil {
		return err
	}
	defer dg.Close()
	r.Spill = time.Since(t0)
	r.Comments = dg.Total
	t1 := time.Now()
	var files []*os.File
	var bufs []*bufio.Writer
	for _, name := range []string{"digest.txt", "digest.html", "comments.csv"} {
		f, err := os.Create(filepath.Join(o.Dir, name))
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		files = append(files, f)
		bufs = append(bufs, bufio.NewWriterSize(f, 256<<10))
	}
	if err := dg.WriteAll(bufs[0], bufs[1], bufs[2]); err != nil {
		return err
	}
	for _, b := range bufs {
		if err := b.Flush(); err != nil {
			return err
		}
	}
	r.Render = time.Since(t1)
	sizes := make([]int64, 3)
	for i, f := range files {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		sizes[i] = info.Size()
	}
	r.TextBytes, r.HTMLBytes, r.CSVBytes = sizes[0], sizes[1], sizes[2]
	return nil
}

// vmHWM is the process's peak resident set, from /proc/self/status.
func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func infoField(ctx context.Context, rdb redis.UniversalClient, section, field string) string {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the module (no go.mod above the working directory)")
		}
		dir = parent
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
