package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

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

	cdAddr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	token := randomHex(16)
	env := []string{
		"REDIS_URL=redis://" + rp.Addr + "/0", "CONSULT_ADDR=" + cdAddr, "DATA_DIR=" + filepath.Join(dir, "consultd"),
		"CONSULT_ADMIN_TOKEN=" + token, "CONSULT_DEMO=false", "CONSULT_REDIS_POOL=" + strconv.Itoa(o.Pool),
		// Every request comes from one address: per-client limits would answer 429.
		"CONSULT_LIMITS=off",
	}
	var pprofAddr string
	if o.Profile && mode == profileMode(o.Modes) {
		if pprofAddr, err = freeAddr(); err != nil {
			return fail(err)
		}
		env = append(env, "CONSULT_PPROF_ADDR="+pprofAddr)
	}
	cd, err := startChild("consultd", filepath.Join(dir, "consultd.log"), childEnv(env...), t.Consultd)
	if err != nil {
		return fail(err)
	}
	defer cd.stop()
	if err := cd.waitHTTP(ctx, "http://"+cdAddr+"/healthz"); err != nil {
		return fail(err)
	}
	anchor, err := createDraft(ctx, "http://"+cdAddr, token)
	if err != nil {
		return fail(fmt.Errorf("%w; consultd's log:\n%s", err, cd.logTail()))
	}
	body, runes := commentBody(anchor, o.BodyBytes)
	mr.BodyBytes, mr.BodyRunes = len(body), runes
	bodyFile := filepath.Join(dir, "comment.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return fail(err)
	}

	bareAddr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	bare, err := startChild(caseBare, filepath.Join(dir, "bare.log"), childEnv(), t.Self, "-serve", "bare", "-addr", bareAddr)
	if err != nil {
		return fail(err)
	}
	defer bare.stop()
	xaddAddr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	xadd, err := startChild(caseXadd, filepath.Join(dir, "xadd.log"), childEnv(), t.Self,
		"-serve", "xadd", "-addr", xaddAddr, "-redis", rp.Addr, "-pool", strconv.Itoa(o.Pool))
	if err != nil {
		return fail(err)
	}
	defer xadd.stop()

	path := "/api/v1/drafts/" + draftID + "/comments"
	servers := []struct {
		c    *child
		addr string
	}{{cd, cdAddr}, {xadd, xaddAddr}, {bare, bareAddr}}
	for _, s := range servers {
		if err := s.c.waitHTTP(ctx, "http://"+s.addr+"/healthz"); err != nil {
			return fail(err)
		}
		// One comment first, so that a refused body is a clear message, not a wrk
		// report full of non-2xx responses.
		if st, got := post(ctx, "http://"+s.addr+path, body); st != http.StatusAccepted {
			return fail(fmt.Errorf("%s answered the comment with %d, not 202: %s", s.c.name, st, got))
		}
	}
	if err := rdb.Del(ctx, xaddStream).Err(); err != nil {
		return fail(err)
	}

	wcfg := wrkConfig{Bin: t.Wrk, Script: t.Script, BodyFile: bodyFile, Threads: o.Threads, Connections: o.Conns}
	rcfg := redisBenchConfig{Bin: t.RedisBenchmark, Addr: rp.Addr, Connections: o.Conns, Stream: benchStream, Value: body}
	alive := func(c *child) error {
		if done, err := c.exited(); done {
			return fmt.Errorf("%s exited during the run (%v); its log:\n%s", c.name, err, c.logTail())
		}
		return nil
	}
	rbRate := 10000.0 // redis-benchmark's last rate, to size its next run
	runners := map[string]func(time.Duration) (result, string, error){
		caseIntake: func(d time.Duration) (result, string, error) {
			before, err := consultMetrics(ctx, cdAddr)
			if err != nil {
				return result{}, "", err
			}
			r, out, err := runWrk(ctx, wcfg, "http://"+cdAddr+path, d)
			if err != nil {
				return r, out, err
			}
			if err := alive(cd); err != nil {
				return r, out, err
			}
			after, err := consultMetrics(ctx, cdAddr)
			if err != nil {
				return r, out, err
			}
			var p []string
			if r.Non2xx > 0 {
				st, got := post(ctx, "http://"+cdAddr+path, body)
				p = append(p, fmt.Sprintf("%d responses were not 202 (one comment sent after the run got %d %s)", r.Non2xx, st, got))
			}
			if n := after.rejected - before.rejected; n > 0 {
				p = append(p, fmt.Sprintf("consultd refused %d comments", n))
			}
			if n := after.accepted - before.accepted; n < r.Requests-r.Non2xx {
				p = append(p, fmt.Sprintf("consultd counted %d receipts for %d completed requests", n, r.Requests-r.Non2xx))
			}
			r.Problem = problems(r, p)
			return r, out, nil
		},
		caseXadd: func(d time.Duration) (result, string, error) {
			r, out, err := runWrk(ctx, wcfg, "http://"+xaddAddr+path, d)
			if err != nil {
				return r, out, err
			}
			if err := alive(xadd); err != nil {
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
			return r, out, alive(bare)
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

func freeAddr() (string, error) {
	p, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createDraft creates the open draft the intake case comments on, through the
// admin API as a bureau would, and returns the anchor of its first article.
func createDraft(ctx context.Context, base, token string) (string, error) {
	now := time.Now()
	in, _ := json.Marshal(map[string]any{
		"id": draftID, "title": "压力测试用规章草案", "bureau": "司法局", "kind": "rule",
		"summary":           "用于测量意见提交接口的吞吐量。",
		"text":              "第一章 总则\n第一条 为了规范公开征求意见工作，制定本办法。\n第二条 本办法适用于本市行政机关起草的规章草案。\n第三条 公开征求意见的期限一般不少于三十日。\n",
		"closes_at":         now.Add(7 * 24 * time.Hour).Format(time.RFC3339),
		"digest_recipients": []string{"office@example.gov.cn"},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/drafts", bytes.NewReader(in))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("create the draft: %w", err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create the draft: %d %s", res.StatusCode, bytes.TrimSpace(out))
	}
	var d struct {
		Sections []struct {
			Anchor string `json:"anchor"`
		} `json:"sections"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return "", fmt.Errorf("create the draft: %w", err)
	}
	if len(d.Sections) == 0 {
		return "", errors.New("create the draft: it has no sections")
	}
	// The first article rather than the chapter heading, when there is one.
	return d.Sections[min(1, len(d.Sections)-1)].Anchor, nil
}

// commentText is what a citizen might write; it is repeated to the size wanted.
const commentText = "建议在第一条中明确本办法的适用范围，对于涉及群众切身利益的事项，应当在作出决定前充分听取公众意见，" +
	"并在规定期限内公开意见采纳情况及理由。同时建议增加对基层工作人员的培训要求，明确培训内容、频次和考核方式，" +
	"确保各项规定能够落到实处。对于第二条规定的程序，建议细化各环节的办理时限，避免因程序不明确导致群众反复奔波。" +
	"第三条规定的三十日期限较为合理，但对于内容复杂、社会关注度高的草案，建议适当延长征求意见期限，并通过多种渠道广泛告知。"

// comment has the fields of consultd's comment API: what the load sends and what
// the decode+XADD baseline decodes.
type comment struct {
	Section     string `json:"section"`
	Body        string `json:"body"`
	Name        string `json:"name"`
	Contact     string `json:"contact"`
	Category    string `json:"category"`
	PublishName bool   `json:"publish_name"`
}

// commentBody is the comment every request sends: the JSON of consultd's comment
// API with a body of Chinese text, as long as fits in size bytes. It returns the
// JSON and the body's length in characters.
func commentBody(section string, size int) ([]byte, int) {
	c := comment{Section: section, Name: "张三", Contact: "zhangsan@example.cn", Category: "individual"}
	var text []rune
	for len(text) < size {
		text = append(text, []rune(commentText)...)
	}
	fit := func(n int) []byte {
		c.Body = string(text[:n])
		b, _ := json.Marshal(c)
		return b
	}
	lo, hi := 1, len(text) // the longest body whose JSON fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(fit(mid)) <= size {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	b := fit(lo)
	return b, utf8.RuneCountInString(c.Body)
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

type counters struct{ accepted, rejected int64 }

// consultMetrics reads consultd's intake counters from /metrics.
func consultMetrics(ctx context.Context, addr string) (counters, error) {
	var c counters
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, fmt.Errorf("consultd /metrics: %w", err)
	}
	defer res.Body.Close()
	found := 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "consult_comments_accepted_total":
			c.accepted, found = int64(v), found+1
		case "consult_comments_rejected_total":
			c.rejected, found = int64(v), found+1
		}
	}
	if found != 2 {
		return c, errors.New("consultd /metrics has no consult_comments_accepted_total and consult_comments_rejected_total")
	}
	return c, sc.Err()
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
