package consultd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCommentBody(t *testing.T) {
	for _, size := range []int{200, 600, 4000} {
		b, runes := CommentBody("art1", size)
		if len(b) > size || len(b) < size-2 {
			t.Errorf("CommentBody(%d): %d bytes", size, len(b))
		}
		if runes < (size-150)/3 {
			t.Errorf("CommentBody(%d): only %d characters of body", size, runes)
		}
		var c Comment
		if err := json.Unmarshal(b, &c); err != nil || c.Section != "art1" || c.Category != "individual" {
			t.Errorf("CommentBody(%d): %+v (%v)", size, c, err)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	const text = "# HELP consult_x a counter\n# TYPE consult_x counter\nconsult_x_other 9\nconsult_x 12\n" +
		`consult_y{lane="a"} 3` + "\nconsult_z 4 1700000000000\nnot a sample line\n"
	got, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"consult_x_other": 9, "consult_x": 12, `consult_y{lane="a"}`: 3, "consult_z": 4}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestCreateDraft checks what is sent for a draft with only an id, and that the
// first article's anchor, not the chapter's, comes back.
func TestCreateDraft(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/drafts" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sections":[{"anchor":"ch-1"},{"anchor":"art-1"},{"anchor":"art-2"}]}`))
	}))
	defer srv.Close()
	anchor, err := CreateDraft(context.Background(), srv.URL, "tok", Draft{ID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if anchor != "art-1" {
		t.Errorf("anchor %q, want art-1", anchor)
	}
	if got["id"] != "d1" || got["title"] == "" || got["text"] == "" {
		t.Errorf("sent %v", got)
	}
	// No opening: the server publishes the draft at its own time.
	closes, err := time.Parse(time.RFC3339, got["closes_at"].(string))
	if _, ok := got["opens_at"]; ok || err != nil || time.Until(closes) < 7*24*time.Hour-time.Minute {
		t.Errorf("window %v to %v (%v): want open now, for a week", got["opens_at"], got["closes_at"], err)
	}

	if _, err := CreateDraft(context.Background(), srv.URL, "wrong", Draft{ID: "d1"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a refused draft: err %v, want one with the status", err)
	}
}
