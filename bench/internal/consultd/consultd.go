// Package consultd owns how the benchmarks run bin/consultd and talk to it: the
// environment it starts with, the draft created through the admin API, the
// comment every load sends and the counters read back from /metrics.
package consultd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"consult/bench/internal/child"
)

// Env is the harness's environment without the variables consultd reads (nor
// the Go runtime's GOGC and GOMAXPROCS), so that a developer's shell can't change
// what is measured, plus kv.
func Env(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "CONSULT_") || k == "REDIS_URL" || k == "SMTP_URL" || k == "DATA_DIR" ||
			k == "BASE_URL" || k == "MAIL_FROM" || k == "GOGC" || k == "GOMAXPROCS" {
			continue
		}
		env = append(env, e)
	}
	return append(env, kv...)
}

// NewToken is a fresh admin token (CONSULT_ADMIN_TOKEN).
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Options start one consultd.
type Options struct {
	Bin      string // bin/consultd
	Dir      string // its data directory is Dir/Name and its log Dir/Name.log
	Name     string // in messages
	RedisURL string // REDIS_URL
	Token    string // CONSULT_ADMIN_TOKEN
	// Pprof serves net/http/pprof on a free port (CONSULT_PPROF_ADDR); Server's
	// PprofAddr says where.
	Pprof bool
	Env   []string // more settings, after the ones above
}

// Server is one running consultd.
type Server struct {
	*child.Process
	Addr      string // host:port it serves on
	PprofAddr string // where it serves net/http/pprof, when Options.Pprof
	Token     string // its admin token
}

// Base is its URL without a path.
func (s *Server) Base() string { return "http://" + s.Addr }

// Start starts consultd on a free port with CONSULT_DEMO=false and the settings
// of o, and waits until it answers /healthz. A consultd that did not come up is
// stopped, and the error has the end of its log.
func Start(ctx context.Context, o Options) (*Server, error) {
	addr, err := child.FreeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{
		"REDIS_URL=" + o.RedisURL, "CONSULT_ADDR=" + addr, "DATA_DIR=" + filepath.Join(o.Dir, o.Name),
		"CONSULT_ADMIN_TOKEN=" + o.Token, "CONSULT_DEMO=false",
	}
	var pprofAddr string
	if o.Pprof {
		if pprofAddr, err = child.FreeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "CONSULT_PPROF_ADDR="+pprofAddr)
	}
	p, err := child.Start(o.Name, filepath.Join(o.Dir, o.Name+".log"), Env(append(env, o.Env...)...), o.Bin)
	if err != nil {
		return nil, err
	}
	s := &Server{Process: p, Addr: addr, PprofAddr: pprofAddr, Token: o.Token}
	if err := p.WaitHTTP(ctx, s.Base()+"/healthz"); err != nil {
		p.Stop()
		return nil, err
	}
	return s, nil
}

// Metrics reads the Prometheus text at base+"/metrics".
func Metrics(ctx context.Context, base string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("consultd /metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("consultd /metrics: %s", res.Status)
	}
	return ParseMetrics(res.Body)
}

// ParseMetrics reads Prometheus text into name → value. A sample with labels is
// under its name with the labels, as printed; comments are skipped.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// name value, or name value timestamp
		if len(f) < 2 || len(f) > 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, sc.Err()
}
