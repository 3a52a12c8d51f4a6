package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/bench/internal/child"
	"consult/bench/internal/consultd"
	"consult/bench/internal/redisbench"
	"consult/internal/redisproc"
)

// The cases, in the order of the first round and of the tables.
const (
	caseIntake = "intake"
	caseXadd   = "echo+XADD"
	caseBare   = "bare echo"
	caseRedis  = "redis XADD"
)

var caseOrder = []string{caseIntake, caseXadd, caseBare, caseRedis}

// benchStream is the stream redis-benchmark appends to.
const benchStream = "benchstream"

// draftID is the draft the intake case comments on.
const draftID = "bench-intake"

// measured is one measured run of one case.
type measured struct {
	Case  string
	Round int
	result
}

// modeResult is everything measured on one redis-server.
type modeResult struct {
	Mode      string
	Runs      []measured // in the order they ran
	Err       error      // the mode stopped early
	BodyBytes int
	BodyRunes int
	Redis     string // a few INFO fields at the end
	Profile   *profileResult
}

func (m modeResult) byCase(name string) []result {
	var rs []result
	for _, r := range m.Runs {
		if r.Case == name {
			rs = append(rs, r.result)
		}
	}
	return rs
}

// profileMode is the mode whose intake is profiled: always, the one the floors are for.
func profileMode(modes []string) string {
	for _, m := range modes {
		if m == "always" {
			return m
		}
	}
	return modes[0]
}

// runMode starts a fresh redis-server in dir with appendfsync mode, consultd and
// the two baselines on it, and runs every case: a warm-up each, then o.Reps
// rounds in which every case runs once. Each round starts one case later than the
// one before, so that no case always follows the same neighbour.
func runMode(ctx context.Context, o options, t tools, mode, dir string) (mr modeResult) {
	mr.Mode = mode
	fail := func(err error) modeResult {
		mr.Err = err
		if ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "bench: appendfsync %s stopped: %v\n", mode, err)
		}
		return mr
	}
	fmt.Printf("\n== appendfsync %s\n", mode)

	// The same redis-server arguments as consultd's embedded default.
	rp, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(dir, "redis"), AppendFsync: mode, Binary: t.RedisServer})
	if err != nil {
		return fail(err)
	}
	defer rp.Stop() // deferred first, so it runs last: after every server stopped
	rdb := redis.NewClient(&redis.Options{Addr: rp.Addr, PoolSize: 2})
	defer rdb.Close()

	token := consultd.NewToken()
	cd, err := consultd.Start(ctx, consultd.Options{
		Bin: t.Consultd, Dir: dir, Name: "consultd", RedisURL: "redis://" + rp.Addr + "/0", Token: token,
		Pprof: o.Profile && mode == profileMode(o.Modes),
		Env: []string{
			"CONSULT_REDIS_POOL=" + strconv.Itoa(o.Pool),
			// Every request comes from one address: per-client limits would answer 429.
			"CONSULT_LIMITS=off",
		},
	})
	if err != nil {
		return fail(err)
	}
	defer cd.Stop()
	cdAddr, pprofAddr := cd.Addr, cd.PprofAddr
	anchor, err := consultd.CreateDraft(ctx, cd.Base(), token, consultd.Draft{ID: draftID})
	if err != nil {
		return fail(fmt.Errorf("%w; consultd's log:\n%s", err, cd.LogTail()))
	}
	body, runes := consultd.CommentBody(anchor, o.BodyBytes)
	mr.BodyBytes, mr.BodyRunes = len(body), runes
	bodyFile := filepath.Join(dir, "comment.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return fail(err)
	}

	bareAddr, err := child.FreeAddr()
	if err != nil {
		return fail(err)
	}
	bare, err := child.Start(caseBare, filepath.Join(dir, "bare.log"), consultd.Env(), t.Self, "-serve", "bare", "-addr", bareAddr)
	if err != nil {
		return fail(err)
	}
	defer bare.Stop()
	xaddAddr, err := child.FreeAddr()
	if err != nil {
		return fail(err)
	}
	xadd, err := child.Start(caseXadd, filepath.Join(dir, "xadd.log"), consultd.Env(), t.Self,
		"-serve", "xadd", "-addr", xaddAddr, "-redis", rp.Addr, "-pool", strconv.Itoa(o.Pool))
	if err != nil {
		return fail(err)
	}
	defer xadd.Stop()

	path := "/api/v1/drafts/" + draftID + "/comments"
	servers := []struct {
		p    *child.Process
		addr string
	}{{cd.Process, cdAddr}, {xadd, xaddAddr}, {bare, bareAddr}}
	for _, s := range servers {
		if err := s.p.WaitHTTP(ctx, "http://"+s.addr+"/healthz"); err != nil {
			return fail(err)
		}
		// One comment first, so that a refused body is a clear message, not a wrk
		// report full of non-2xx responses.
		if st, got := post(ctx, "http://"+s.addr+path, body); st != http.StatusAccepted {
			return fail(fmt.Errorf("%s answered the comment with %d, not 202: %s", s.p.Name, st, got))
		}
	}
	if err := rdb.Del(ctx, xaddStream).Err(); err != nil {
		return fail(err)
	}

	wcfg := wrkConfig{Bin: t.Wrk, Script: t.Script, BodyFile: bodyFile, Threads: o.Threads, Connections: o.Conns}
	rcfg := redisbench.XADD{Bin: t.RedisBenchmark, Addr: rp.Addr, Conns: o.Conns, Stream: benchStream, Value: body}
	rbRate := 10000.0 // redis-benchmark's last rate, to size its next run
	runners := map[string]func(time.Duration) (result, string, error){
		caseIntake: func(d time.Duration) (result, string, error) {
			before, err := consultMetrics(ctx, cd.Base())
			if err != nil {
				return result{}, "", err
			}
			r, out, err := runWrk(ctx, wcfg, "http://"+cdAddr+path, d)
			if err != nil {
				return r, out, err
			}
			if err := cd.Alive(); err != nil {
				return r, out, err
			}
			after, err := consultMetrics(ctx, cd.Base())
			if err != nil {
				return r, out, err
			}
			var p []string
			if r.Non2xx > 0 {
				st, got := post(ctx, "http://"+cdAddr+path, body)
				p = append(p, fmt.Sprintf("%d responses were not 202 (one comment sent after the run got %d %s)", r.Non2xx, st, got))
			}
			if n := after.refused - before.refused; n > 0 {
				p = append(p, fmt.Sprintf("consultd refused %d comments", n))
			}
			if n := after.issued - before.issued; n < r.Requests-r.Non2xx {
				p = append(p, fmt.Sprintf("consultd counted %d receipts for %d completed requests", n, r.Requests-r.Non2xx))
			}
			r.Problem = problems(r, p)
			// Like the baselines' streams, the draft's comments are emptied after
			// each run (once consultd's workers have settled them), so that the
			// data set, and the AOF rewrites Redis starts by itself, are as small
			// for the last run as for the first: otherwise each rewrite copies
			// every comment of the runs before, and lands on whichever case runs.
			return r, out, emptyIntake(ctx, cd.Base(), rdb, draftID)
		},
		caseXadd: func(d time.Duration) (result, string, error) {
			r, out, err := runWrk(ctx, wcfg, "http://"+xaddAddr+path, d)
			if err != nil {
				return r, out, err
			}
			if err := xadd.Alive(); err != nil {
				return r, out, err
			}
			var p []string
			n, err := rdb.XLen(ctx, xaddStream).Result()
			if err != nil {
				return r, out, err
			}
			if n < r.Requests-r.Non2xx {
				p = append(p, fmt.Sprintf("the stream has %d entries for %d completed requests", n, r.Requests-r.Non2xx))
			}
			r.Problem = problems(r, p)
			// The streams are emptied after each run, so that the data set, and the
			// AOF rewrites Redis starts by itself, stay as small for the last run as
			// for the first.
			return r, out, rdb.Del(ctx, xaddStream).Err()
		},
		caseBare: func(d time.Duration) (result, string, error) {
			r, out, err := runWrk(ctx, wcfg, "http://"+bareAddr+path, d)
			if err != nil {
				return r, out, err
			}
			r.Problem = problems(r, nil)
			return r, out, bare.Alive()
		},
		caseRedis: func(d time.Duration) (result, string, error) {
			n := max(1000, int(rbRate*d.Seconds()))
			r, out, err := runRedisBenchmark(ctx, rcfg, n)
			if err != nil {
				return r, out, err
			}
			rbRate = r.RPS
			var p []string
			got, err := rdb.XLen(ctx, benchStream).Result()
			if err != nil {
				return r, out, err
			}
			if got != int64(n) {
				p = append(p, fmt.Sprintf("the stream has %d entries for %d XADDs", got, n))
			}
			r.Problem = problems(r, p)
			return r, out, rdb.Del(ctx, benchStream).Err()
		},
	}
	do := func(name string, d time.Duration, label string) (result, error) {
		r, out, err := runners[name](d)
		if out != "" {
			// Kept with -keep, for a look at what wrk or redis-benchmark printed.
			_ = os.WriteFile(filepath.Join(dir, strings.NewReplacer(" ", "-", "+", "-").Replace(label+"-"+name)+".txt"), []byte(out), 0o600)
		}
		if err != nil {
			return r, fmt.Errorf("%s, %s: %w", name, label, err)
		}
		line := fmt.Sprintf("  %-8s %-10s %9.0f req/s  p50 %-8s p99 %-8s", label, name, r.RPS, fmtDur(r.P50), fmtDur(r.P99))
		if r.Problem != "" {
			line += "  !! " + r.Problem
		}
		fmt.Println(line)
		// Let a background AOF rewrite finish before the next run starts.
		waitRewrite(ctx, rdb)
		return r, nil
	}

	if o.Warmup > 0 {
		for _, name := range caseOrder {
			if _, err := do(name, o.Warmup, "warm-up"); err != nil {
				return fail(err)
			}
		}
	}
	for round := 0; round < o.Reps; round++ {
		for i := range caseOrder {
			name := caseOrder[(round+i)%len(caseOrder)]
			r, err := do(name, o.Dur, fmt.Sprintf("round %d", round+1))
			if err != nil {
				return fail(err)
			}
			mr.Runs = append(mr.Runs, measured{Case: name, Round: round + 1, result: r})
		}
	}
	if pprofAddr != "" {
		mr.Profile = profileIntake(ctx, o, wcfg, "http://"+cdAddr+path, pprofAddr, t.Consultd)
	}
	mr.Redis = redisInfo(ctx, rdb)
	return mr
}

// problems joins what a cross-check found with what wrk itself reported.
func problems(r result, p []string) string {
	if r.Non2xx > 0 && len(p) == 0 {
		p = append(p, fmt.Sprintf("%d responses were not 2xx or 3xx", r.Non2xx))
	}
	if r.Errors.total() > 0 {
		p = append(p, "socket errors: "+r.Errors.String())
	}
	return strings.Join(p, "; ")
}

// post sends one comment and returns the status and the start of the answer.
func post(ctx context.Context, url string, body []byte) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(res.Body, 300))
	return res.StatusCode, string(bytes.TrimSpace(out))
}

type counters struct{ issued, refused int64 }

// emptyIntake waits (at most a minute) until consultd's workers have processed
// every comment it took in, then deletes the draft's comments from Redis: its
// intake stream (the workers make their group again), receipts, personal data,
// duplicate hashes and counts. The key names are consult's (store/keys.go).
func emptyIntake(ctx context.Context, base string, rdb *redis.Client, draftID string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := consultd.Metrics(ctx, base)
		if err != nil {
			return err
		}
		if m["consult_comments_processed_total"] >= m["consult_comments_receipts_issued_total"] {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consultd's workers processed %.0f of %.0f comments within a minute",
				m["consult_comments_processed_total"], m["consult_comments_receipts_issued_total"])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var keys []string
	for _, k := range []string{"intake", "receipts", "pii", "dups", "counts"} {
		keys = append(keys, "consult:{"+draftID+"}:"+k)
	}
	return rdb.Del(ctx, keys...).Err()
}

// consultMetrics reads consultd's intake counters from /metrics.
func consultMetrics(ctx context.Context, base string) (counters, error) {
	m, err := consultd.Metrics(ctx, base)
	if err != nil {
		return counters{}, err
	}
	issued, ok1 := m["consult_comments_receipts_issued_total"]
	refused, ok2 := m["consult_comments_refused_total"]
	if !ok1 || !ok2 {
		return counters{}, errors.New("consultd /metrics has no consult_comments_receipts_issued_total and consult_comments_refused_total")
	}
	return counters{issued: int64(issued), refused: int64(refused)}, nil
}

// waitRewrite waits (at most 30 s) while Redis rewrites its AOF in the background.
func waitRewrite(ctx context.Context, rdb *redis.Client) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		info, err := rdb.Info(ctx, "persistence").Result()
		if err != nil || !strings.Contains(info, "aof_rewrite_in_progress:1") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A moment for the servers' garbage collectors and the consultd workers to
	// catch up, so that one run's leftovers weigh less on the next.
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
}

// redisInfo is a few facts about the bench's Redis at the end of a mode.
func redisInfo(ctx context.Context, rdb *redis.Client) string {
	info, err := rdb.Info(ctx, "persistence", "memory").Result()
	if err != nil {
		return "INFO failed: " + err.Error()
	}
	var parts []string
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "aof_rewrites" || k == "used_memory_human" || k == "aof_enabled" || k == "aof_last_bgrewrite_status") {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

// profileResult is a CPU profile of consultd taken during an extra intake run.
type profileResult struct {
	Path string
	Top  string  // go tool pprof -top: where the CPU time is spent
	Cum  string  // go tool pprof -top -cum: which calls it is spent under
	RPS  float64 // intake under profiling (not counted with the measured runs)
	Err  error
}

// profileIntake loads the intake for the profile's length plus a margin, and
// meanwhile fetches a CPU profile from consultd's CONSULT_PPROF_ADDR.
func profileIntake(ctx context.Context, o options, w wrkConfig, url, pprofAddr, bin string) *profileResult {
	p := &profileResult{Path: filepath.Join(o.Root, "bench", "cpu.pprof")}
	secs := int(o.ProfileFor.Round(time.Second) / time.Second)
	fmt.Printf("  profile  intake     %ds CPU profile of consultd …\n", secs)
	type wrkDone struct {
		r   result
		err error
	}
	done := make(chan wrkDone, 1)
	go func() {
		r, _, err := runWrk(ctx, w, url, time.Duration(secs+3)*time.Second)
		done <- wrkDone{r, err}
	}()
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	hc := &http.Client{Timeout: time.Duration(secs+20) * time.Second}
	res, err := hc.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, secs))
	var prof []byte
	switch {
	case err != nil:
		p.Err = fmt.Errorf("consultd serves no profile at CONSULT_PPROF_ADDR=%s (is this build older than that setting?): %w", pprofAddr, err)
	case res.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		p.Err = fmt.Errorf("consultd's /debug/pprof/profile answered %d: %s", res.StatusCode, bytes.TrimSpace(b))
	default:
		prof, err = io.ReadAll(res.Body)
		if err != nil {
			p.Err = fmt.Errorf("reading the profile: %w", err)
		}
	}
	if res != nil {
		res.Body.Close()
	}
	wd := <-done
	if wd.err == nil {
		p.RPS = wd.r.RPS
	}
	if p.Err != nil {
		fmt.Fprintln(os.Stderr, "bench: no profile:", p.Err)
		return p
	}
	if err := os.WriteFile(p.Path, prof, 0o644); err != nil {
		p.Err = err
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		p.Err = fmt.Errorf("go tool pprof: %w", err)
		return p
	}
	for _, v := range []struct {
		dst  *string
		args []string
	}{{&p.Top, []string{"-top"}}, {&p.Cum, []string{"-top", "-cum"}}} {
		args := append(append([]string{"tool", "pprof"}, v.args...), "-nodecount=25", bin, p.Path)
		out, err := exec.CommandContext(ctx, goBin, args...).CombinedOutput()
		if err != nil {
			p.Err = fmt.Errorf("go tool pprof: %w: %s", err, bytes.TrimSpace(out))
			return p
		}
		*v.dst = strings.TrimSpace(string(out))
	}
	fmt.Println("  profile  written to", p.Path)
	return p
}
