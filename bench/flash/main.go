// Command flash is `make bench-flash` and `make bench-scale`: two load tests of
// consultd's comment intake (POST /api/v1/drafts/{id}/comments) that the wrk
// harness in bench/ cannot run.
//
//	crowd  a flash crowd: an open-loop generator offers ten times what the intake
//	       sustains, over 640 connections, first with limits off and then with
//	       limits on and many clients told apart by X-Forwarded-For; it checks
//	       consultd's promises (202, or 503 with Retry-After; every receipt in the
//	       record) and exits 1 when one is broken
//	scale  1, 2 and 3 consultd replicas on one redis-server and on a three-master
//	       Redis Cluster, with a closed-loop generator spread over the replicas
//
// Each writes its own section of bench/RESULTS.md and leaves the rest alone.
// Every server is a child process on loopback, stopped at the end (Redis last).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"consult/bench/internal/child"
	"consult/bench/internal/consultd"
	"consult/bench/internal/results"
	"consult/internal/redisproc"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "crowd" && os.Args[1] != "scale") {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/flash crowd [flags]   a flash crowd, limits off then on (make bench-flash)")
		fmt.Fprintln(os.Stderr, "       go run ./bench/flash scale [flags]   1–3 replicas on Redis and on a Cluster (make bench-scale)")
		fmt.Fprintln(os.Stderr, "       go run ./bench/flash crowd -h        the flags")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	switch os.Args[1] {
	case "crowd":
		o, err := parseCrowdFlags(os.Args[2:])
		code = flagError(err)
		if err == nil {
			code = runCrowd(ctx, o)
		}
	case "scale":
		o, err := parseScaleFlags(os.Args[2:])
		code = flagError(err)
		if err == nil {
			code = runScale(ctx, o)
		}
	}
	stop()
	os.Exit(code)
}

func flagError(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintln(os.Stderr, "flash:", err)
	return 2
}

// common are the flags both commands have.
type common struct {
	BodyBytes int
	Consultd  string
	Out       string
	Keep      bool
	Root      string   // the module's directory
	Args      []string // the command line after "go run ./bench/flash"
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.BodyBytes, "body-bytes", 600, "size of the JSON comment in bytes (the body is Chinese text)")
	fs.StringVar(&c.Consultd, "consultd", "bin/consultd", "the consultd binary (relative to the module's directory); `make build` makes it")
	fs.StringVar(&c.Out, "out", "bench/RESULTS.md", "the file whose section is written (relative to the module's directory)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory: Redis's files and every server's log")
}

func (c *common) check() error {
	var errs []error
	if c.BodyBytes < 150 || c.BodyBytes > 60000 {
		errs = append(errs, errors.New("-body-bytes: 150 to 60000 (the API takes at most 64 KB)"))
	}
	root, err := consultd.ModuleRoot()
	if err != nil {
		errs = append(errs, err)
	}
	c.Root = root
	return errors.Join(errs...)
}

func (c common) outPath() string {
	if filepath.IsAbs(c.Out) {
		return c.Out
	}
	return filepath.Join(c.Root, c.Out)
}

// command is the command line as it was run, for RESULTS.md.
func (c common) command() string {
	parts := []string{"go", "run", "./bench/flash"}
	for _, a := range c.Args {
		if a == "" || strings.ContainsAny(a, " \t\"'$`\\") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// setUp finds the tools (with cluster, those of the Cluster too), warns when
// the machine is busy and makes the run's temporary directory, named after
// prefix; cleanup removes it unless -keep. A code other than 0 is the exit status
// of a run that can't start, after a message on stderr.
func (c common) setUp(cluster bool, prefix string) (t tools, tmp string, cleanup func(), code int) {
	t, err := findTools(c, cluster)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flash: cannot start:\n  "+strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return t, "", nil, 2
	}
	if la := results.LoadAvg1(); la > 0.5 {
		fmt.Fprintf(os.Stderr, "flash: warning: the load average is %.2f: other work will be in the figures\n", la)
	}
	if tmp, err = os.MkdirTemp("", prefix); err != nil {
		fmt.Fprintln(os.Stderr, "flash:", err)
		return t, "", nil, 1
	}
	if c.Keep {
		fmt.Fprintln(os.Stderr, "flash: keeping", tmp)
		return t, tmp, func() {}, 0
	}
	return t, tmp, func() { os.RemoveAll(tmp) }, 0
}

// tools are the programs the harness runs.
type tools struct {
	Consultd, RedisServer, RedisCLI, RedisBenchmark string
}

// findTools finds bin/consultd and redis-server, and with cluster also redis-cli
// and redis-benchmark.
func findTools(c common, cluster bool) (tools, error) {
	var t tools
	var errs []error
	target := "make bench-flash"
	if cluster {
		target = "make bench-scale"
	}
	var err error
	if t.Consultd, err = consultd.Binary(c.Root, c.Consultd, target); err != nil {
		errs = append(errs, err)
	}
	if t.RedisServer, err = redisproc.Find(""); err != nil {
		errs = append(errs, errors.New("redis-server not found: run `make deps`"))
	}
	if cluster {
		if t.RedisCLI, err = child.LookPath("redis-cli"); err != nil {
			errs = append(errs, errors.New("redis-cli not found: run `make deps` (it comes with redis-server's redis-tools)"))
		}
		if t.RedisBenchmark, err = child.LookPath("redis-benchmark"); err != nil {
			errs = append(errs, errors.New("redis-benchmark not found: run `make deps` (it comes with redis-server's redis-tools)"))
		}
	}
	return t, errors.Join(errs...)
}
