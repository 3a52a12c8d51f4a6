package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"consult/bench/internal/consultd"
)

// goroutines is consultd's goroutine count: go_goroutines from /metrics when it
// has one, else the total of the goroutine profile at CONSULT_PPROF_ADDR. The
// second result names the source.
func goroutines(ctx context.Context, c *consultd.Server) (int64, string, error) {
	if m, err := consultd.Metrics(ctx, c.Base()); err == nil {
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
