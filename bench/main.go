// Command bench is `make bench`: it loads consultd's comment intake
// (POST /api/v1/drafts/{id}/comments) with wrk on loopback, next to three
// baselines on the same Redis, for each of the embedded default's persistence
// modes, and writes the medians, their ratios and the machine into the intake
// section of bench/RESULTS.md.
//
// The cases:
//
//	intake     bin/consultd, the real binary, on the bench's redis-server
//	echo+XADD  an echo handler that decodes the same JSON and XADDs it (go-redis)
//	bare echo  an echo handler that answers 202 and does nothing else
//	redis XADD redis-benchmark sending the same bytes with XADD, no HTTP at all
//
// The two echo baselines are this program run again with -serve, so that every
// server is its own process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"consult/bench/internal/child"
	"consult/bench/internal/consultd"
	"consult/bench/internal/results"
	"consult/internal/redisproc"
)

// options are the harness's flags.
type options struct {
	Dur, Warmup   time.Duration
	Reps          int
	Quick         bool
	Conns         int
	Threads       int
	Pool          int
	Modes         []string
	BodyBytes     int
	Profile       bool
	ProfileFor    time.Duration
	Consultd      string
	Out           string
	Keep          bool
	Root          string // the module's directory
	Args          []string
	serve         string // -serve: run a baseline server instead
	addr, redisTo string
}

func parseFlags(args []string) (options, error) {
	var o options
	var modes string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.DurationVar(&o.Dur, "d", 10*time.Second, "duration of each measured run (whole seconds)")
	fs.IntVar(&o.Reps, "reps", 5, "measured runs of each case in each mode, interleaved (runs vary by about ±5% here: at least 5 for a median worth the name)")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up run of each case before the measured ones")
	fs.BoolVar(&o.Quick, "quick", false, "a short run for trying the harness: -d 2s -warmup 1s unless given")
	fs.IntVar(&o.Conns, "c", 64, "connections (wrk and redis-benchmark)")
	fs.IntVar(&o.Threads, "t", 2, "wrk threads")
	fs.IntVar(&o.Pool, "pool", 128, "go-redis pool size of consultd (CONSULT_REDIS_POOL) and of the echo+XADD baseline")
	fs.StringVar(&modes, "modes", "always,everysec", "appendfsync modes to run, in order, each on a fresh redis-server")
	fs.IntVar(&o.BodyBytes, "body-bytes", 600, "size of the JSON comment in bytes (the body is Chinese text)")
	fs.BoolVar(&o.Profile, "profile", false, "capture a CPU profile of consultd during an extra intake run (needs CONSULT_PPROF_ADDR in consultd); writes bench/cpu.pprof")
	fs.DurationVar(&o.ProfileFor, "profile-for", 10*time.Second, "length of the CPU profile")
	fs.StringVar(&o.Consultd, "consultd", "bin/consultd", "the consultd binary (relative to the module's directory); `make build` makes it")
	fs.StringVar(&o.Out, "out", "bench/RESULTS.md", "the file whose intake section is written (relative to the module's directory)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (Redis files, server logs, wrk outputs)")
	fs.StringVar(&o.serve, "serve", "", "internal: run a baseline server, bare or xadd")
	fs.StringVar(&o.addr, "addr", "", "internal: -serve's listen address")
	fs.StringVar(&o.redisTo, "redis", "", "internal: -serve xadd's Redis host:port")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]   (from the module's directory, after `make build`)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Args = args
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Quick {
		if !set["d"] {
			o.Dur = 2 * time.Second
		}
		if !set["warmup"] {
			o.Warmup = time.Second
		}
	}
	if o.serve != "" {
		return o, nil
	}
	var errs []error
	if o.Dur < time.Second || o.Dur%time.Second != 0 {
		errs = append(errs, errors.New("-d: whole seconds, at least 1s (wrk's unit)"))
	}
	if o.Warmup != 0 && (o.Warmup < time.Second || o.Warmup%time.Second != 0) {
		errs = append(errs, errors.New("-warmup: whole seconds, or 0 for none"))
	}
	if o.Reps < 1 {
		errs = append(errs, errors.New("-reps: at least 1"))
	}
	if o.Conns < 1 || o.Threads < 1 || o.Threads > o.Conns || o.Pool < 1 {
		errs = append(errs, errors.New("-c, -t, -pool: at least 1, and no more threads than connections"))
	}
	if o.BodyBytes < 150 || o.BodyBytes > 60000 {
		errs = append(errs, errors.New("-body-bytes: 150 to 60000 (the API takes at most 64 KB)"))
	}
	if o.ProfileFor < time.Second {
		errs = append(errs, errors.New("-profile-for: at least 1s"))
	}
	for _, m := range strings.Split(modes, ",") {
		m = strings.TrimSpace(m)
		if m != "always" && m != "everysec" {
			errs = append(errs, fmt.Errorf("-modes: %q is not always or everysec", m))
			continue
		}
		o.Modes = append(o.Modes, m)
	}
	return o, errors.Join(errs...)
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.serve != "" {
		if err := serve(o.serve, o.addr, o.redisTo, o.Pool); err != nil {
			fmt.Fprintln(os.Stderr, "bench -serve:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// tools are the programs the harness runs.
type tools struct {
	Self, Consultd, Wrk, RedisServer, RedisBenchmark, Script string
}

func findTools(o options) (tools, error) {
	var t tools
	var errs []error
	var err error
	if t.Self, err = os.Executable(); err != nil {
		errs = append(errs, fmt.Errorf("cannot find this program's own binary to run the baselines: %w", err))
	}
	if t.Consultd, err = consultd.Binary(o.Root, o.Consultd, "make bench"); err != nil {
		errs = append(errs, err)
	}
	if t.Wrk, err = child.LookPath("wrk"); err != nil {
		errs = append(errs, errors.New("wrk not found: run `make deps-bench` (Debian's wrk package)"))
	}
	if t.RedisServer, err = redisproc.Find(""); err != nil {
		errs = append(errs, errors.New("redis-server not found: run `make deps-bench`"))
	}
	if t.RedisBenchmark, err = child.LookPath("redis-benchmark"); err != nil {
		errs = append(errs, errors.New("redis-benchmark not found: run `make deps-bench` (it comes with redis-server's redis-tools)"))
	}
	t.Script = filepath.Join(o.Root, "bench", "wrk", "post.lua")
	if _, err := os.Stat(t.Script); err != nil {
		errs = append(errs, fmt.Errorf("the wrk script: %w", err))
	}
	return t, errors.Join(errs...)
}

// staleBinary names a Go source file newer than bin/consultd, if there is one:
// then the figures would be for old code.
func staleBinary(root, bin string) string {
	st, err := os.Stat(bin)
	if err != nil {
		return ""
	}
	var newer string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || newer != "" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "bench", "data", "artifacts", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			if info, err := d.Info(); err == nil && info.ModTime().After(st.ModTime()) {
				newer, _ = filepath.Rel(root, p)
			}
		}
		return nil
	})
	return newer
}

func run(ctx context.Context, o options) int {
	var err error
	if o.Root, err = consultd.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	t, err := findTools(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: cannot start:\n"+indent(err.Error()))
		return 2
	}
	if f := staleBinary(o.Root, t.Consultd); f != "" {
		fmt.Fprintf(os.Stderr, "bench: warning: %s is newer than %s; `make build` (or `make bench`) rebuilds it\n", f, t.Consultd)
	}
	if la := results.LoadAvg1(); la > 0.5 {
		fmt.Fprintf(os.Stderr, "bench: warning: the load average is %.2f on %d CPUs: other work will be in the figures\n", la, runtime.NumCPU())
	}
	tmp, err := os.MkdirTemp("", "consult-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.Keep {
		fmt.Fprintln(os.Stderr, "bench: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	mach := readMachine(t.Consultd, t.RedisServer, t.RedisBenchmark, t.Wrk)
	perMode := time.Duration(len(caseOrder))*(o.Warmup+time.Duration(o.Reps)*(o.Dur+time.Second)) + 10*time.Second
	if o.Profile {
		perMode += o.ProfileFor + 5*time.Second
	}
	fmt.Printf("bench: %d modes × %d cases × (%s warm-up + %d × %s): about %s\n",
		len(o.Modes), len(caseOrder), o.Warmup, o.Reps, o.Dur, (time.Duration(len(o.Modes)) * perMode).Round(10*time.Second))

	rep := report{Opts: o, Machine: mach, Tools: t, Start: time.Now()}
	for _, mode := range o.Modes {
		mr := runMode(ctx, o, t, mode, filepath.Join(tmp, mode))
		rep.Modes = append(rep.Modes, mr)
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted; servers stopped, RESULTS.md left as it was")
			return 130
		}
	}
	rep.End = time.Now()
	rep.LoadAfter = results.LoadAvg()

	fmt.Println()
	fmt.Print(rep.table())
	out := o.Out
	if !filepath.IsAbs(out) {
		out = filepath.Join(o.Root, out)
	}
	if err := results.WriteSection(out, "intake", rep.markdown()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Println("\nwritten: the intake section of", out)
	if f := rep.failures(); len(f) > 0 {
		fmt.Fprintln(os.Stderr, "\n"+strings.Repeat("!", 72))
		fmt.Fprintln(os.Stderr, "RUN FAILED: the figures above are not a clean measurement:")
		for _, s := range f {
			fmt.Fprintln(os.Stderr, "  - "+s)
		}
		fmt.Fprintln(os.Stderr, strings.Repeat("!", 72))
		return 1
	}
	return 0
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
