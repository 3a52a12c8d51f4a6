package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/bench/internal/redisbench"
	"consult/internal/redisproc"
)

// backend is the Redis the consultd processes of a run share: one redis-server,
// or the three masters of a Redis Cluster.
type backend struct {
	Kind  string // "redis" or "cluster"
	procs []*redisproc.Proc
}

// URL is what REDIS_URL gets: redis://host:port/0, or the Cluster's host:port list.
func (b *backend) URL() string {
	if b.Kind == "cluster" {
		return strings.Join(b.Addrs(), ",")
	}
	return "redis://" + b.procs[0].Addr + "/0"
}

func (b *backend) Addrs() []string {
	var a []string
	for _, p := range b.procs {
		a = append(a, p.Addr)
	}
	return a
}

// Client is a go-redis client for the backend, for the harness's own reads.
func (b *backend) Client() redis.UniversalClient {
	if b.Kind == "cluster" {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs(), PoolSize: 4})
	}
	return redis.NewClient(&redis.Options{Addr: b.procs[0].Addr, PoolSize: 4})
}

// Stop stops every node; it runs after every consultd has stopped.
func (b *backend) Stop() {
	for _, p := range b.procs {
		p.Stop()
	}
}

// startRedis starts one redis-server in dir with consultd's embedded defaults
// (appendfsync always).
func startRedis(ctx context.Context, bin, dir string) (*backend, error) {
	p, err := redisproc.Start(ctx, redisproc.Options{Dir: dir, AppendFsync: "always", Binary: bin})
	if err != nil {
		return nil, err
	}
	return &backend{Kind: "redis", procs: []*redisproc.Proc{p}}, nil
}

// startCluster starts three redis-server nodes in cluster mode (each with the
// embedded defaults, appendfsync always) and joins them with redis-cli --cluster
// create, as internal/redistest does for the tests; here they are the harness's
// children, not a test's.
func startCluster(ctx context.Context, bin, cli, dir string) (*backend, error) {
	b := &backend{Kind: "cluster"}
	for i := 0; i < 3; i++ {
		d := filepath.Join(dir, "node"+strconv.Itoa(i))
		p, err := redisproc.Start(ctx, redisproc.Options{Dir: d, AppendFsync: "always", Binary: bin, Extra: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(d, "nodes.conf"), "--cluster-node-timeout", "2000",
		}})
		if err != nil {
			b.Stop()
			return nil, fmt.Errorf("cluster node %d: %w", i, err)
		}
		b.procs = append(b.procs, p)
	}
	args := append([]string{"--cluster", "create"}, b.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		b.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs()})
	defer cl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := cl.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.Stop()
			return nil, fmt.Errorf("the cluster was not ready within 20 s: %v %s", err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xaddBaseline is redis-benchmark appending the comment's bytes with XADD on c
// connections, no HTTP: the ceiling over every intake figure.
type xaddBaseline struct {
	redisbench.Result
	N   int
	Err error
}

// runXaddBaseline sizes the run from a short first one, so that it lasts about d.
func runXaddBaseline(ctx context.Context, bin, addr string, conns int, value []byte, d time.Duration) xaddBaseline {
	x := redisbench.XADD{Bin: bin, Addr: addr, Conns: conns, Stream: "benchstream", Value: value, Timeout: 2 * time.Minute}
	run := func(n int) xaddBaseline {
		r, _, err := x.Run(ctx, n)
		return xaddBaseline{Result: r, N: n, Err: err}
	}
	first := run(20000)
	if first.Err != nil || first.RPS <= 0 {
		return first
	}
	return run(max(20000, int(first.RPS*d.Seconds())))
}
