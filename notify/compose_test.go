package notify

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"consult/internal/smtptest"
)

var fixtureExpires = at("2026-12-31T10:05:00Z")

// testPaths are the web layer's paths, as cmd passes them (handlers.DraftPath,
// handlers.DigestFilePath); notify cannot import handlers.
var testPaths = Paths{
	Draft: func(id string) string { return "/d/" + url.PathEscape(id) },
	File: func(draftID, job, file string) string {
		return "/digests/" + url.PathEscape(draftID) + "/" + url.PathEscape(job) + "/" + url.PathEscape(file)
	},
}

func fixtureLinks(file string) string {
	return linkURL("https://consult.example.gov.cn/", testPaths, testLinkKey, "hongya-fazhi-2026", finalJob, file, fixtureExpires)
}

// TestMailBody: a digest whose message fits goes whole, and the estimate of
// its size is never below the real one; one that does not fit goes as the
// summary, with links and nothing of the list.
func TestMailBody(t *testing.T) {
	d := fixtureDigest(t, Bureau)
	whole := wholeMail(t, d)
	id, _ := MessageID(d.DraftID, finalJob, "fzb@example.gov.cn", testFrom)
	raw, err := whole.Email(testFrom, "fzb@example.gov.cn", id, at("2026-12-01T10:05:00Z")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	est := encodedSize(whole.Text, whole.HTML, whole.CSV)
	if est < int64(len(raw)) {
		t.Errorf("estimated %d bytes for a message of %d", est, len(raw))
	}

	for _, tt := range []struct {
		max   int64
		whole bool
	}{{est, true}, {int64(10e6), true}, {est - 1, false}, {2 * mimeAllowance, false}} {
		r, gotWhole, err := mailBody(d, tt.max, fixtureLinks, fixtureExpires)
		if err != nil {
			t.Fatal(err)
		}
		if gotWhole != tt.whole {
			t.Errorf("max %d: whole = %v, want %v", tt.max, gotWhole, tt.whole)
			continue
		}
		if tt.whole {
			if !bytes.Equal(r.Text, whole.Text) || !bytes.Equal(r.HTML, whole.HTML) || !bytes.Equal(r.CSV, whole.CSV) || r.CSVFilename != whole.CSVFilename {
				t.Errorf("max %d: whole e-mail differs from the rendered digest", tt.max)
			}
			continue
		}
		checkSummary(t, r, d.Total)
		if raw, _ := r.Email(testFrom, "fzb@example.gov.cn", id, time.Now()).Bytes(); int64(len(raw)) > tt.max {
			t.Errorf("summary e-mail of %d bytes over the limit %d", len(raw), tt.max)
		}
	}
}

// checkSummary checks a summary e-mail: no list, no attachment, the totals,
// three links, and plain words that the list is at the links, until when.
func checkSummary(t *testing.T, r Rendered, total int) {
	t.Helper()
	if r.CSV != nil {
		t.Error("summary e-mail carries a CSV")
	}
	for part, body := range map[string]string{"text": string(r.Text), "html": string(r.HTML)} {
		for _, want := range []string{
			fmt.Sprintf("意见总数 Comments: %s", map[string]string{"text": fmt.Sprint(total), "html": fmt.Sprintf("<strong>%d</strong>", total)}[part]),
			"本邮件未附意见全文", "NOT in this e-mail", "链接有效期至", "The links work until", "按章节 By section", "章节 Section",
		} {
			if want == "按章节 By section" && part == "html" || want == "章节 Section" && part == "text" {
				continue
			}
			if !strings.Contains(body, want) {
				t.Errorf("summary %s lacks %q", part, want)
			}
		}
		for _, bad := range []string{"回执编号 Receipt", "SHA-256", "联系方式 Contact:"} {
			if strings.Contains(body, bad) {
				t.Errorf("summary %s has %q: a list where there should be none", part, bad)
			}
		}
		if n := len(summaryLinks(body)); n != 3 {
			t.Errorf("summary %s has %d download links, want 3", part, n)
		}
	}
}

var linkPattern = regexp.MustCompile(`https?://[^\s"<>]+/digests/[^\s"<>]+`)

// summaryLinks finds the download links in a body, unescaped as a mail client
// would follow them.
func summaryLinks(body string) []*url.URL {
	var out []*url.URL
	for _, s := range linkPattern.FindAllString(body, -1) {
		u, err := url.Parse(strings.ReplaceAll(s, "&amp;", "&"))
		if err == nil {
			out = append(out, u)
		}
	}
	return out
}

func TestSummaryGolden(t *testing.T) {
	r, whole, err := mailBody(fixtureDigest(t, Bureau), 2*mimeAllowance, fixtureLinks, fixtureExpires)
	if err != nil || whole {
		t.Fatalf("mailBody = whole %v, %v", whole, err)
	}
	golden(t, "summary_bureau.txt", r.Text)
	golden(t, "summary_bureau.html", r.HTML)
}

// TestSummaryDelivered parses a summary e-mail as a mail client would: the
// links survive quoted-printable and HTML escaping and still verify.
func TestSummaryDelivered(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	m, err := NewSMTPMailer(SMTPConfig{URL: "smtp://" + srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	d := fixtureDigest(t, Bureau)
	r, _, err := mailBody(d, 2*mimeAllowance, fixtureLinks, fixtureExpires)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := MessageID(d.DraftID, finalJob, "fzb@example.gov.cn", testFrom)
	if err := m.Send(t.Context(), r.Email(testFrom, "fzb@example.gov.cn", id, time.Now())); err != nil {
		t.Fatal(err)
	}
	p := srv.WaitFor(t, 1, 5*time.Second)[0].Parse(t)
	if len(p.Attachments) != 0 {
		t.Errorf("summary delivered with %d attachments", len(p.Attachments))
	}
	for part, body := range map[string]string{"text": p.Text, "html": p.HTML} {
		links := summaryLinks(body)
		if len(links) != 3 {
			t.Fatalf("%s part has %d links", part, len(links))
		}
		files := map[string]bool{}
		for _, u := range links {
			seg := strings.Split(strings.TrimPrefix(u.Path, "/digests/"), "/")
			if len(seg) != 3 {
				t.Fatalf("link path %q", u.Path)
			}
			files[seg[2]] = true
			q := u.Query()
			if err := checkLink(testLinkKey, seg[0], seg[1], seg[2], q.Get("exp"), q.Get("sig"), at("2026-12-02T00:00:00Z")); err != nil {
				t.Errorf("%s link to %s: %v", part, seg[2], err)
			}
		}
		if !files[FileCSV] || !files[FileHTML] || !files[FileText] {
			t.Errorf("%s links name %v", part, files)
		}
	}
}

func TestLinks(t *testing.T) {
	now := at("2026-12-02T00:00:00Z")
	exp := now.Add(time.Hour)
	u, err := url.Parse(linkURL("https://consult.example.gov.cn", testPaths, testLinkKey, "d-1", "interim-1764547200000", FileCSV, exp))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/digests/d-1/interim-1764547200000/comments.csv"; u.Path != want || u.Host != "consult.example.gov.cn" {
		t.Fatalf("link %s, want path %s", u, want)
	}
	q := u.Query()
	ok := func(draft, job, file, e, sig string, at time.Time) error {
		return checkLink(testLinkKey, draft, job, file, e, sig, at)
	}
	if err := ok("d-1", "interim-1764547200000", FileCSV, q.Get("exp"), q.Get("sig"), now); err != nil {
		t.Fatalf("a fresh link: %v", err)
	}
	sig := q.Get("sig")
	flipped := []byte(sig)
	flipped[3] ^= 1
	other := LinkKey(strings.Repeat("k", MinLinkKey))
	for name, err := range map[string]error{
		"other draft":      ok("d-2", "interim-1764547200000", FileCSV, q.Get("exp"), sig, now),
		"other job":        ok("d-1", finalJob, FileCSV, q.Get("exp"), sig, now),
		"other file":       ok("d-1", "interim-1764547200000", FileHTML, q.Get("exp"), sig, now),
		"unknown file":     ok("d-1", "interim-1764547200000", "secrets.txt", q.Get("exp"), sig, now),
		"later expiry":     ok("d-1", "interim-1764547200000", FileCSV, fmt.Sprint(exp.Unix()+86400), sig, now),
		"expiry respelt":   ok("d-1", "interim-1764547200000", FileCSV, "0"+q.Get("exp"), sig, now),
		"flipped bit":      ok("d-1", "interim-1764547200000", FileCSV, q.Get("exp"), string(flipped), now),
		"cut short":        ok("d-1", "interim-1764547200000", FileCSV, q.Get("exp"), sig[:len(sig)-2], now),
		"no signature":     ok("d-1", "interim-1764547200000", FileCSV, q.Get("exp"), "", now),
		"other key":        checkLink(other, "d-1", "interim-1764547200000", FileCSV, q.Get("exp"), sig, now),
		"malformed job":    ok("d-1", "interim-x", FileCSV, q.Get("exp"), sig, now),
		"draft with brace": ok("d-{1}", "interim-1764547200000", FileCSV, q.Get("exp"), sig, now),
	} {
		if !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("%s: %v, want ErrLinkInvalid", name, err)
		}
	}
	if err := ok("d-1", "interim-1764547200000", FileCSV, q.Get("exp"), sig, exp); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("at expiry: %v, want ErrLinkExpired", err)
	}
	var refused interface{ LinkRefused() bool }
	if e := fmt.Errorf("wrapped: %w", ErrLinkExpired); !errors.As(e, &refused) || !refused.LinkRefused() {
		t.Error("a wrapped link error does not report LinkRefused")
	}
	if s := fmt.Sprintf("%v %+v %#v %s", testLinkKey, Config{LinkKey: testLinkKey}, testLinkKey, testLinkKey); strings.Contains(s, string(testLinkKey)) {
		t.Errorf("the link key prints: %s", s)
	}
}

func TestLoadLinkKey(t *testing.T) {
	rdb := newEnv(t, smtptest.Options{}).rdb
	ctx := t.Context()
	if _, err := LoadLinkKey(ctx, rdb, "short"); err == nil {
		t.Error("a short configured key was accepted")
	}
	k, err := LoadLinkKey(ctx, rdb, string(testLinkKey))
	if err != nil || string(k) != string(testLinkKey) {
		t.Errorf("configured key: %v", err)
	}
	if n, _ := rdb.Exists(ctx, linkKeyKey).Result(); n != 0 {
		t.Error("a configured key was stored in Redis")
	}
	// Two replicas starting with no key configured agree on one.
	k1, err1 := LoadLinkKey(ctx, rdb, "")
	k2, err2 := LoadLinkKey(ctx, rdb, "")
	if err1 != nil || err2 != nil || len(k1) < MinLinkKey || !bytes.Equal(k1, k2) {
		t.Errorf("generated keys %x, %x (%v, %v)", k1, k2, err1, err2)
	}
}
