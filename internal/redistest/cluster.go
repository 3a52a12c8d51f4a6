package redistest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/internal/redisproc"
)

// Cluster is a Redis Cluster of three masters owned by one test.
type Cluster struct {
	Addrs []string
}

// StartCluster starts three redis-server nodes in cluster mode and joins them with
// redis-cli --cluster create, so that tests run the same code against a Cluster
// that they run against one server: a command across two slots fails there.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found (run `make deps-test`): %v", err)
	}
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		dir := filepath.Join(t.TempDir(), "node"+strconv.Itoa(i))
		p, err := redisproc.Start(context.Background(), redisproc.Options{Dir: dir, Extra: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000",
		}})
		if err != nil {
			t.Fatalf("redistest: cluster node: %v (run `make deps-test`)", err)
		}
		t.Cleanup(p.Stop)
		c.Addrs = append(c.Addrs, p.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: cluster create: %v\n%s", err, out)
	}
	// Wait until every slot is served and the nodes agree.
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer cl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := cl.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready: %v %s", err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, PoolSize: 64})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// URL is the REDIS_URL form of the cluster: a comma-separated host:port list.
func (c *Cluster) URL() string {
	return strings.Join(c.Addrs, ",")
}
