package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// consultd is one running bin/consultd.
type consultd struct {
	*child
	Addr      string // host:port it serves on
	PprofAddr string // where it serves net/http/pprof
	Token     string // its admin token
}

// Base is its URL without a path.
func (c *consultd) Base() string { return "http://" + c.Addr }

// startConsultd starts bin/consultd on a free port with env added to the
// harness's settings, and waits until it answers /healthz.
func startConsultd(ctx context.Context, bin, dir, name, redisURL, token string, env ...string) (*consultd, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	all := append([]string{
		"REDIS_URL=" + redisURL, "CONSULT_ADDR=" + addr, "DATA_DIR=" + filepath.Join(dir, name),
		"CONSULT_ADMIN_TOKEN=" + token, "CONSULT_DEMO=false", "CONSULT_PPROF_ADDR=" + pprofAddr,
	}, env...)
	ch, err := startChild(name, filepath.Join(dir, name+".log"), childEnv(all...), bin)
	if err != nil {
		return nil, err
	}
	c := &consultd{child: ch, Addr: addr, PprofAddr: pprofAddr, Token: token}
	if err := ch.waitHTTP(ctx, c.Base()+"/healthz"); err != nil {
		ch.stop()
		return nil, err
	}
	return c, nil
}

// createDraft creates an open draft through the admin API, as a bureau would,
// and returns the anchor of its first article. The same draft as bench/mode.go's.
func createDraft(ctx context.Context, base, token, id string) (string, error) {
	now := time.Now()
	in, _ := json.Marshal(map[string]any{
		"id": id, "title": "压力测试用规章草案", "bureau": "司法局", "kind": "rule",
		"summary":           "用于测量意见提交接口的吞吐量。",
		"text":              "第一章 总则\n第一条 为了规范公开征求意见工作，制定本办法。\n第二条 本办法适用于本市行政机关起草的规章草案。\n第三条 公开征求意见的期限一般不少于三十日。\n",
		"closes_at":         now.Add(7 * 24 * time.Hour).Format(time.RFC3339),
		"digest_recipients": []string{"office@example.gov.cn"},
	})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
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
	return d.Sections[min(1, len(d.Sections)-1)].Anchor, nil
}

// commentText is what a citizen might write; it is repeated to the size wanted.
// The same text as bench/mode.go's.
const commentText = "建议在第一条中明确本办法的适用范围，对于涉及群众切身利益的事项，应当在作出决定前充分听取公众意见，" +
	"并在规定期限内公开意见采纳情况及理由。同时建议增加对基层工作人员的培训要求，明确培训内容、频次和考核方式，" +
	"确保各项规定能够落到实处。对于第二条规定的程序，建议细化各环节的办理时限，避免因程序不明确导致群众反复奔波。" +
	"第三条规定的三十日期限较为合理，但对于内容复杂、社会关注度高的草案，建议适当延长征求意见期限，并通过多种渠道广泛告知。"

// comment has the fields of consultd's comment API.
type comment struct {
	Section     string `json:"section"`
	Body        string `json:"body"`
	Name        string `json:"name"`
	Contact     string `json:"contact"`
	Category    string `json:"category"`
	PublishName bool   `json:"publish_name"`
}

// commentBody is the JSON comment every request sends, a copy of bench/mode.go's
// (package main there): a body of Chinese text, as long as fits in size bytes.
// It returns the JSON and the body's length in characters.
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

// metricsOf reads consultd's /metrics into name → value (lines without labels).
func metricsOf(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("consultd /metrics: %w", err)
	}
	defer res.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, sc.Err()
}

// goroutines is consultd's goroutine count: go_goroutines from /metrics when it
// has one, else the total of the goroutine profile at CONSULT_PPROF_ADDR. The
// second result names the source.
func goroutines(ctx context.Context, c *consultd) (int64, string, error) {
	if m, err := metricsOf(ctx, c.Addr); err == nil {
		for _, name := range []string{"go_goroutines", "consult_goroutines"} {
			if v, ok := m[name]; ok {
				return int64(v), "/metrics " + name, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.PprofAddr+"/debug/pprof/goroutine?debug=1", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	// "goroutine profile: total 42"
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("goroutine profile: %q", line)
	}
	return n, "pprof goroutine profile", nil
}

// recordCheck is the receipts of the 202s looked up in consultd's record.
type recordCheck struct {
	Read     int64    // comments read back through the admin API
	Pages    int      // pages read
	Receipts int64    // 202s whose receipt was looked for
	Missing  int64    // of those, not in the record
	Examples []string // a few missing codes
	Took     time.Duration
	Err      error
}

// checkRecord reads every comment of the draft back through the admin API
// (GET /api/v1/drafts/{id}/comments?limit=&after=, following "next") and looks
// up every receipt code a 202 carried.
func checkRecord(ctx context.Context, base, token, draftID string, codes []string) recordCheck {
	start := time.Now()
	rc := recordCheck{Receipts: int64(len(codes))}
	var seen []string
	after := ""
	hc := &http.Client{Timeout: 60 * time.Second}
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/drafts/"+url.PathEscape(draftID)+"/comments?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := hc.Do(req)
		if err != nil {
			rc.Err = fmt.Errorf("read the comments back: %w", err)
			return rc
		}
		var page struct {
			Comments []struct {
				Code string `json:"code"`
			} `json:"comments"`
			Next string `json:"next"`
		}
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
			res.Body.Close()
			rc.Err = fmt.Errorf("read the comments back: %d %s", res.StatusCode, bytes.TrimSpace(b))
			return rc
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil {
			rc.Err = fmt.Errorf("read the comments back: %w", err)
			return rc
		}
		rc.Pages++
		for _, c := range page.Comments {
			seen = append(seen, c.Code)
		}
		rc.Read += int64(len(page.Comments))
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	rc.Missing, rc.Examples = missing(codes, seen, 5)
	rc.Took = time.Since(start)
	return rc
}

// missing counts the codes of want that are not in have, and returns up to n of them.
func missing(want, have []string, n int) (int64, []string) {
	set := make(map[string]struct{}, len(have))
	for _, c := range have {
		set[c] = struct{}{}
	}
	var count int64
	var ex []string
	for _, c := range want {
		if _, ok := set[c]; !ok {
			count++
			if len(ex) < n {
				ex = append(ex, c)
			}
		}
	}
	slices.Sort(ex)
	return count, ex
}
