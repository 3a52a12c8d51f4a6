// Command chaos is `make chaos`: it sends comments to three consultd replicas on
// one redis-server while it kills replicas, restarts Redis and stalls it, then
// lets the draft's window close and reads the digest e-mail the replicas send to
// an SMTP server in this process. It checks that every receipt a client was
// given is in the digest exactly once, that no comment is in it twice, and that
// each recipient got exactly one digest; it prints the figures, writes them into
// bench/RESULTS.md between <!-- chaos:begin --> and <!-- chaos:end -->, and exits
// non-zero when a check failed.
//
// The three concerns are three types: load (the clients and what they were
// told), injector (the faults, as planned by plan), and check (a digest against
// the submissions). run wires them; judge and findings turn an outcome into the
// verdict and the reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"consult/bench/internal/consultd"
	"consult/bench/internal/results"
	"consult/internal/redisproc"
)

// Client and digest timings, the same for `make chaos` and the test.
const (
	// attemptTimeout is a client's patience for one attempt: shorter than every
	// stall (stallMin), so that clients give up while Redis is stopped.
	attemptTimeout = 3 * time.Second
	// retryFor: how long after the load a keyed submission may still be retried.
	retryFor = 5 * time.Second
	// digestWait: how long after the window closed the digests may take; see
	// config.DigestWait.
	digestWait = 2 * time.Minute
)

// options are the command's flags.
type options struct {
	Dur      time.Duration
	Clients  int
	Rate     float64
	Seed     uint64
	Out      string
	Keep     bool
	Consultd string
	Args     []string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.DurationVar(&o.Dur, "d", 60*time.Second, "length of the load; faults are spread over it")
	fs.IntVar(&o.Clients, "clients", 16, "concurrent clients")
	fs.Float64Var(&o.Rate, "rate", 60, "new comments per second, all clients together (keeps the digest small enough to attach its CSV)")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the fault plan and the clients' choices; 0 picks one (printed, to repeat a run)")
	fs.StringVar(&o.Out, "out", "bench/RESULTS.md", "file whose chaos section is replaced (relative to the module's directory); empty writes none")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory: Redis's files and every replica's log")
	fs.StringVar(&o.Consultd, "consultd", "bin/consultd", "the consultd binary (relative to the module's directory); `make build` makes it")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/chaos [flags]   (from the module's directory, after `make build`)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Args = args
	var errs []error
	if o.Dur < 30*time.Second {
		errs = append(errs, errors.New("-d: at least 30s, room for a replica kill, a Redis restart and a stall"))
	}
	if o.Clients < 1 || o.Rate <= 0 {
		errs = append(errs, errors.New("-clients and -rate: above zero"))
	}
	return o, errors.Join(errs...)
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCommand(ctx, o)
	stop()
	os.Exit(code)
}

func runCommand(ctx context.Context, o options) int {
	root, err := consultd.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	bin, err := consultd.Binary(root, o.Consultd, "make chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	redisBin, err := redisproc.Find("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: redis-server not found: run `make deps`")
		return 2
	}
	tmp, err := os.MkdirTemp("", "consult-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	if o.Keep {
		fmt.Fprintln(os.Stderr, "chaos: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	mail, stopMail, err := startMailbox()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: SMTP server:", err)
		return 1
	}
	defer stopMail()

	if o.Seed == 0 {
		o.Seed = rand.Uint64N(1 << 31)
	}
	const replicas = 3
	cfg := config{
		Consultd: bin, RedisServer: redisBin, Dir: tmp, Replicas: replicas, Mail: mail, DigestWait: digestWait, Progress: os.Stdout,
		Load: loadConfig{Clients: o.Clients, Rate: o.Rate, For: o.Dur, RetryFor: retryFor, Timeout: attemptTimeout,
			KeyedShare: 0.5, Seed: o.Seed},
		Plan: plan(o.Dur, replicas, rand.New(rand.NewPCG(o.Seed, 0))),
	}
	out, err := run(ctx, cfg)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "chaos: interrupted; every process stopped, RESULTS.md left as it was")
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: the run could not be carried out:", err)
		return 1
	}
	f := judge(out)
	f.Build = gitDescribe(root)
	f.Args = strings.Join(o.Args, " ")
	fmt.Print(f.text())
	if o.Out != "" {
		path := o.Out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := results.WriteSection(path, "chaos", f.markdown()); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		fmt.Println("written:", path)
	}
	if len(f.Failures) > 0 {
		return 1
	}
	return 0
}

// gitDescribe names the commit the working tree is at, "-dirty" when it has
// changes: bin/consultd is built from the working tree.
func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(commit unknown)"
	}
	return "at " + strings.TrimSpace(string(out))
}
