package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/record"
	"consult/store"
)

// redisTime is the Redis server's clock, to the millisecond.
func (a *apiEnv) redisTime(t *testing.T) time.Time {
	t.Helper()
	now, err := a.redis.Client(t).Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.Truncate(time.Millisecond)
}

func draftBody(id string, opens, closes time.Time) []byte {
	in := map[string]any{"id": id, "title": "办法", "bureau": "司法局", "kind": "rule", "text": "第一条 总则。",
		"closes_at": closes.Format(time.RFC3339Nano), "digest_recipients": []string{"a@example.gov.cn"}}
	if !opens.IsZero() {
		in["opens_at"] = opens.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(in)
	return b
}

// TestAPIPublishNow: a draft created without an opening, or with one a moment
// past, opens at the Redis server's time, which the answer returns; an opening
// further past is a 422 on opens_at; a future one is kept.
func TestAPIPublishNow(t *testing.T) {
	a := newAPI(t)
	now := time.Now()
	for _, tc := range []struct {
		name     string
		opens    time.Time
		status   int
		stamped  bool
		errField string
	}{
		{"absent", time.Time{}, 201, true, ""},
		{"a moment past", now.Add(-30 * time.Second), 201, true, ""},
		{"an hour past", now.Add(-time.Hour), 422, false, "opens_at"},
		{"scheduled", now.Add(48 * time.Hour).Truncate(time.Second), 201, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			before := a.redisTime(t)
			res, out := a.do(t, "POST", "/api/v1/drafts", apiToken, draftBody(id, tc.opens, now.Add(72*time.Hour)))
			after := a.redisTime(t)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", res.StatusCode, tc.status, out)
			}
			if tc.errField != "" {
				if errs, _ := out["errors"].(map[string]any); errs[tc.errField] == nil {
					t.Fatalf("no message for %s: %v", tc.errField, out)
				}
				return
			}
			opens, err1 := time.Parse(time.RFC3339Nano, out["opens_at"].(string))
			created, err2 := time.Parse(time.RFC3339Nano, out["created_at"].(string))
			if err1 != nil || err2 != nil || created.Before(before) || created.After(after) {
				t.Fatalf("created_at %v (Redis time %v to %v), opens_at %v", out["created_at"], before, after, out["opens_at"])
			}
			if tc.stamped && !opens.Equal(created) || !tc.stamped && !opens.Equal(tc.opens) {
				t.Fatalf("opens_at %v, created_at %v, asked %v", opens, created, tc.opens)
			}
			if _, got := a.do(t, "GET", "/api/v1/drafts/"+id, "", nil); got["opens_at"] != out["opens_at"] {
				t.Fatalf("GET shows opens_at %v, creation answered %v", got["opens_at"], out["opens_at"])
			}
		})
	}
}

// TestAPIEvents: the record as staff read it, page by page, each event with
// its actor, Redis's time, and its stored bytes whose hash it shows.
func TestAPIEvents(t *testing.T) {
	a := newAPI(t)
	before := a.redisTime(t)
	if res, out := a.do(t, "POST", "/api/v1/drafts", apiToken, draftBody("rec", time.Time{}, time.Now().Add(time.Hour))); res.StatusCode != 201 {
		t.Fatalf("create: %d %v", res.StatusCode, out)
	}
	if res, out := a.do(t, "PUT", "/api/v1/drafts/rec/limits", apiToken, []byte(`{"pow_bits":16}`)); res.StatusCode != 200 {
		t.Fatalf("limits: %d %v", res.StatusCode, out)
	}
	after := a.redisTime(t)

	var got []map[string]any
	path := "/api/v1/drafts/rec/events?limit=2"
	for range 3 {
		res, out := a.do(t, "GET", path, apiToken, nil)
		if res.StatusCode != 200 || out["draft_id"] != "rec" {
			t.Fatalf("GET %s: %d %v", path, res.StatusCode, out)
		}
		for _, e := range out["events"].([]any) {
			got = append(got, e.(map[string]any))
		}
		next, ok := out["next"].(float64)
		if !ok {
			break
		}
		path = "/api/v1/drafts/rec/events?limit=2&after=" + strconv.FormatInt(int64(next), 10)
	}
	actions := []string{}
	for i, e := range got {
		actions = append(actions, e["action"].(string))
		at, err := time.Parse(time.RFC3339Nano, e["at"].(string))
		if e["seq"] != float64(i+1) || e["actor"] != string(record.AdminToken) || err != nil || at.Before(before) || at.After(after) {
			t.Errorf("event %v (Redis time %v to %v)", e, before, after)
		}
		canon := e["canonical"].(string)
		sum := sha256.Sum256([]byte(canon))
		if e["sha256"] != hex.EncodeToString(sum[:]) {
			t.Errorf("sha256 %v is not the hash of %s", e["sha256"], canon)
		}
		if _, err := record.Parse([]byte(canon)); err != nil {
			t.Errorf("canonical %s: %v", canon, err)
		}
	}
	if want := []string{"draft.created", "draft.published", "draft.limits_changed"}; !slices.Equal(actions, want) {
		t.Fatalf("actions %v, want %v", actions, want)
	}
	if d := got[2]["data"].(map[string]any); d["pow_bits"] != float64(16) {
		t.Errorf("limits event data %v", d)
	}

	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/api/v1/drafts/rec/events", "", 401, "unauthorized"},
		{"/api/v1/drafts/nowhere/events", apiToken, 404, "draft_not_found"},
		{"/api/v1/drafts/rec/events?after=-1", apiToken, 400, "bad_query"},
		{"/api/v1/drafts/rec/events?after=x", apiToken, 400, "bad_query"},
		{"/api/v1/drafts/rec/events?limit=0", apiToken, 400, "bad_query"},
		{"/api/v1/drafts/rec/events?limit=1001", apiToken, 400, "bad_query"},
	} {
		if res, out := a.do(t, "GET", tc.path, tc.token, nil); res.StatusCode != tc.status || out["code"] != tc.code {
			t.Errorf("GET %s: %d %v, want %d %s", tc.path, res.StatusCode, out, tc.status, tc.code)
		}
	}
	if _, out := a.do(t, "GET", "/api/v1/drafts/rec/events?after=3", apiToken, nil); len(out["events"].([]any)) != 0 || out["next"] != nil {
		t.Errorf("past the end: %v", out)
	}
}

// TestAPIStaffEvents: the staff record as admins read it: the changes the
// admin API made, each once, in order, by its actor at Redis's time, with no
// password in it; a read-scoped admin token will do.
func TestAPIStaffEvents(t *testing.T) {
	a := newAPI(t)
	const password = "a password of the API test"
	before := a.redisTime(t)
	for _, body := range []string{
		`{"name":"ops","role":"admin","password":"` + password + `"}`,
		`{"name":"zhang","role":"bureau","bureaus":["洪雅县司法局"],"password":"` + password + `"}`,
		`{"name":"zhang","role":"reviewer","password":"` + password + `"}`, // taken: no event
	} {
		a.do(t, "POST", "/api/v1/users", apiToken, []byte(body))
	}
	if res, out := a.do(t, "POST", "/api/v1/users/zhang/disable", apiToken, nil); res.StatusCode != 200 {
		t.Fatalf("disable: %d %v", res.StatusCode, out)
	}
	after := a.redisTime(t)
	// A read token of the admin the API made.
	as, err := store.NewAccounts(a.redis.Client(t), store.AccountsConfig{Hasher: testHasher})
	if err != nil {
		t.Fatal(err)
	}
	_, readToken, err := as.CreateToken(context.Background(), accounts.UserActor("ops"), "ops", accounts.ScopeRead, "audit")
	if err != nil {
		t.Fatal(err)
	}

	var got []map[string]any
	path := "/api/v1/staff/events?limit=2"
	for range 4 {
		res, out := a.do(t, "GET", path, readToken, nil)
		if res.StatusCode != 200 || out["scope"] != "staff" {
			t.Fatalf("GET %s: %d %v", path, res.StatusCode, out)
		}
		for _, e := range out["events"].([]any) {
			got = append(got, e.(map[string]any))
		}
		next, ok := out["next"].(float64)
		if !ok {
			break
		}
		path = "/api/v1/staff/events?limit=2&after=" + strconv.FormatInt(int64(next), 10)
	}
	var actions []string
	for i, e := range got {
		actions = append(actions, fmt.Sprintf("%s by %s", e["action"], e["actor"]))
		canon := e["canonical"].(string)
		sum := sha256.Sum256([]byte(canon))
		if e["seq"] != float64(i+1) || e["sha256"] != hex.EncodeToString(sum[:]) || e["intake"] != nil || strings.Contains(canon, password) {
			t.Errorf("event %v", e)
		}
		if _, err := record.Parse([]byte(canon)); err != nil {
			t.Errorf("canonical %s: %v", canon, err)
		}
		if at, err := time.Parse(time.RFC3339Nano, e["at"].(string)); i < 4 && (err != nil || at.Before(before) || at.After(after)) {
			t.Errorf("event %v (Redis time %v to %v)", e, before, after)
		}
	}
	want := []string{"user.created by admin-token", "bureau.created by admin-token", "user.created by admin-token",
		"user.disabled by admin-token", "token.created by user:ops"}
	if !slices.Equal(actions, want) {
		t.Fatalf("staff record %v, want %v", actions, want)
	}
	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/api/v1/staff/events", "", 401, "unauthorized"},
		{"/api/v1/staff/events?after=-1", apiToken, 400, "bad_query"},
		{"/api/v1/staff/events?limit=1001", apiToken, 400, "bad_query"},
	} {
		if res, out := a.do(t, "GET", tc.path, tc.token, nil); res.StatusCode != tc.status || out["code"] != tc.code {
			t.Errorf("GET %s: %d %v, want %d %s", tc.path, res.StatusCode, out, tc.status, tc.code)
		}
	}
}

// TestNoRouteChangesARecord calls every route of the table, every method, with
// the admin token and a body, and checks that the events recorded before are
// all still there, byte for byte: a route may append to a record, never change
// or remove an event. The records' routes only read.
func TestNoRouteChangesARecord(t *testing.T) {
	env := newRouteEnv(t)
	rdb := env.redis.Client(t)
	ctx := context.Background()
	// The staff record too: a bureau and a user the routes may come across.
	as, err := store.NewAccounts(rdb, store.AccountsConfig{Hasher: testHasher})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := as.EnsureBureau(ctx, accounts.ConsoleActor("test"), planBureau); err != nil {
		t.Fatal(err)
	} else if _, err := as.CreateUser(ctx, accounts.ConsoleActor("test"), accounts.User{Name: "target", Role: accounts.RoleBureau, Bureaus: []string{b.ID}}, matrixPassword); err != nil {
		t.Fatal(err)
	}
	records := []string{"consult:{plan}:events", store.StaffRecordKey()}
	before := map[string][]string{}
	for _, k := range records {
		if before[k], err = rdb.LRange(ctx, k, 0, -1).Result(); err != nil || len(before[k]) == 0 {
			t.Fatalf("record %s before: %v, %v", k, before[k], err)
		}
	}
	for _, rt := range env.e.Routes() {
		// Safe methods only: OPTIONS (which answers what a path allows) reads less than GET.
		if strings.Contains(rt.Path, "/events") && rt.Method != http.MethodGet && rt.Method != http.MethodOptions {
			t.Errorf("%s %s: the record's routes only read", rt.Method, rt.Path)
		}
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if rt.Method == echo.RouteNotFound {
				continue
			}
			req := httptest.NewRequest(method, env.target(rt.Path), strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+apiToken)
			env.e.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	for _, k := range records {
		after, err := rdb.LRange(ctx, k, 0, -1).Result()
		if err != nil || len(after) < len(before[k]) || !slices.Equal(after[:len(before[k])], before[k]) {
			t.Fatalf("record %s changed:\nbefore %q\nafter  %q", k, before[k], after)
		}
	}
}
