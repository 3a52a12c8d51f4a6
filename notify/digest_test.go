package notify

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"flag"
	"fmt"
	"html"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"consult/comments"
	"consult/drafts"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var shanghai = defaultLocation()

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixtureDraft is a county draft in the shape the parser gives.
func fixtureDraft() drafts.Draft {
	return drafts.Draft{
		ID:               "hongya-fazhi-2026",
		Title:            "洪雅县法治政府建设实施方案（征求意见稿）",
		Bureau:           "洪雅县司法局",
		Kind:             drafts.KindNormative,
		OpensAt:          at("2026-11-01T09:00:00+08:00"),
		ClosesAt:         at("2026-12-01T18:00:00+08:00"),
		DigestRecipients: []string{"fzb@hongya.example.gov.cn", "director@hongya.example.gov.cn"},
		Ref:              7,
		Sections: []drafts.Section{
			{Anchor: "preamble", Text: "为深入推进依法行政……\n"},
			{Anchor: "p1", Label: "一、", Heading: "总体要求", Level: 1},
			{Anchor: "p1-i1", Label: "（一）", Heading: "指导思想", Level: 2},
			{Anchor: "p2", Label: "二、", Heading: "主要任务", Level: 1},
		},
	}
}

// fixtureComments covers: every audience rule for names, contacts of several
// shapes, markup and formulas in bodies, a comment on an anchor the draft lacks,
// and an order received that differs from the slice order. Each has the stream
// position Redis would have given it (see inStreamOrder).
func fixtureComments() []comments.Comment {
	cs := []comments.Comment{
		{Code: "7-AAAAA-00001", DraftID: "hongya-fazhi-2026", Section: "p2", Category: comments.CategoryIndividual,
			Name: "张三", Contact: "13800000000", PublishName: false,
			Body: "建议在“主要任务”中增加行政执法公示的具体时限。", ReceivedAt: at("2026-11-02T01:00:00Z"), SHA256: strings.Repeat("a1", 32)},
		{Code: "7-AAAAA-00002", DraftID: "hongya-fazhi-2026", Section: "", Category: comments.CategoryEnterprise,
			Name: "四川某某科技有限公司", Contact: "legal@example.cn", PublishName: true,
			Body: "<script>alert('x')</script> & <b>整体</b>赞同。", ReceivedAt: at("2026-11-03T02:30:00Z"), SHA256: strings.Repeat("b2", 32)},
		{Code: "7-AAAAA-00003", DraftID: "hongya-fazhi-2026", Section: "p1", Category: comments.CategoryIndividual,
			Body: `=HYPERLINK("http://evil.example","点这里")`, ReceivedAt: at("2026-11-05T08:00:00Z"), SHA256: strings.Repeat("c3", 32)},
		{Code: "7-AAAAA-00004", DraftID: "hongya-fazhi-2026", Section: "p2", Category: comments.CategoryExpert,
			Name: "欧阳修", Contact: "ouyang@example.edu.cn", PublishName: false,
			Body: "-2+3 是第一行\n第二行\r\n第三行", ReceivedAt: at("2026-11-06T09:15:30Z"), SHA256: strings.Repeat("d4", 32)},
		{Code: "7-AAAAA-00005", DraftID: "hongya-fazhi-2026", Section: "gone-anchor", Category: comments.CategoryOther,
			Name: "李四", Contact: "+86 28 1234 5678", PublishName: true,
			Body: "@SUM(A1:A2)", ReceivedAt: at("2026-11-07T00:00:00Z"), SHA256: strings.Repeat("e5", 32), Duplicate: true},
		{Code: "7-AAAAA-00006", DraftID: "hongya-fazhi-2026", Section: "p1", Category: comments.CategoryOrganization,
			Name: "Li Wei", Contact: "liwei@example.org", PublishName: false,
			Body: "\tstarts with a tab", ReceivedAt: at("2026-11-04T00:00:00Z"), SHA256: strings.Repeat("f6", 32)},
	}
	for i := range cs {
		cs[i].Entry = fmt.Sprintf("%d-0", cs[i].ReceivedAt.UnixMilli())
		cs[i].Status = comments.StatusStored
	}
	return cs
}

// fixtureHead is the newest stream position of fixtureComments.
var fixtureHead = fmt.Sprintf("%d-0", at("2026-11-07T00:00:00Z").UnixMilli())

// inStreamOrder sorts comments as store's Each gives them: by stream position.
func inStreamOrder(cs []comments.Comment) []comments.Comment {
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(a, b comments.Comment) int { return compareEntries(a.Entry, b.Entry) })
	return cs
}

// compareEntries orders stream positions "<ms>-<seq>".
func compareEntries(a, b string) int {
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

// build builds a digest and closes it when the test ends.
func build(t *testing.T, d drafts.Draft, cs []comments.Comment, o Options) *Digest {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	dg, err := Build(d, SliceSource(inStreamOrder(cs)), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dg.Close() })
	return dg
}

func fixtureDigest(t *testing.T, a Audience) *Digest {
	t.Helper()
	return build(t, fixtureDraft(), fixtureComments(), Options{
		Audience:    a,
		Location:    shanghai,
		BaseURL:     "https://consult.example.gov.cn/",
		Paths:       testPaths,
		GeneratedAt: at("2026-12-01T10:05:00Z"),
		Until:       fixtureHead,
	})
}

// rendered renders every format of a digest in memory.
type renderedDigest struct{ text, html, csv []byte }

func renderAll(t *testing.T, d *Digest) renderedDigest {
	t.Helper()
	var text, html, csv bytes.Buffer
	if err := d.WriteAll(&text, &html, &csv); err != nil {
		t.Fatal(err)
	}
	// One format alone renders the same bytes.
	for name, f := range map[string]struct {
		write func(io.Writer) error
		want  []byte
	}{"text": {d.WriteText, text.Bytes()}, "html": {d.WriteHTML, html.Bytes()}, "csv": {d.WriteCSV, csv.Bytes()}} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), f.want) {
			t.Errorf("%s rendered alone differs from %s rendered with the others", name, name)
		}
	}
	return renderedDigest{text.Bytes(), html.Bytes(), csv.Bytes()}
}

// contacts are every contact in the fixture, each of which must stay out of a
// public copy.
var contacts = []string{"13800000000", "legal@example.cn", "ouyang@example.edu.cn", "+86 28 1234 5678", "1234 5678", "liwei@example.org"}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./notify -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is meant, run go test ./notify -update and review the diff\n--- got\n%s", path, got)
	}
}

func TestDigestGolden(t *testing.T) {
	for _, a := range []Audience{Bureau, Public} {
		r := renderAll(t, fixtureDigest(t, a))
		golden(t, "digest_"+a.String()+".txt", r.text)
		golden(t, "digest_"+a.String()+".html", r.html)
	}
}

// groupEntries reads back the entries of every group, numbered as shown.
func groupEntries(t *testing.T, d *Digest) [][]Entry {
	t.Helper()
	var out [][]Entry
	n := 1
	for _, g := range d.Groups {
		var es []Entry
		if err := d.entries(g, n, func(e Entry) error { es = append(es, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(es) != g.Count {
			t.Errorf("group %q counts %d and holds %d", g.Anchor, g.Count, len(es))
		}
		n += len(es)
		out = append(out, es)
	}
	return out
}

func TestBuildCountsAndGrouping(t *testing.T) {
	d := fixtureDigest(t, Bureau)
	if d.Total != 6 {
		t.Errorf("Total = %d, want 6", d.Total)
	}
	gotCats := map[comments.Category]int{}
	var order []comments.Category
	for _, c := range d.Categories {
		gotCats[c.Category] = c.Count
		order = append(order, c.Category)
	}
	wantCats := map[comments.Category]int{
		comments.CategoryIndividual: 2, comments.CategoryEnterprise: 1, comments.CategoryOrganization: 1,
		comments.CategoryExpert: 1, comments.CategoryPublicBody: 0, comments.CategoryOther: 1,
	}
	if !maps.Equal(gotCats, wantCats) || !slices.Equal(order, comments.Categories) {
		t.Errorf("categories = %v in order %v, want %v in order %v", gotCats, order, wantCats, comments.Categories)
	}

	type group struct {
		anchor string
		codes  []string
	}
	var got []group
	entries := groupEntries(t, d)
	for i, g := range d.Groups {
		gr := group{anchor: g.Anchor}
		for _, e := range entries[i] {
			gr.codes = append(gr.codes, e.Code)
		}
		got = append(got, gr)
	}
	// Whole draft first, then the draft's order (p1 before p2, the preamble and
	// p1-i1 left out for want of comments), the unknown anchor last; inside a
	// section, the order received.
	want := []group{
		{"", []string{"7-AAAAA-00002"}},
		{"p1", []string{"7-AAAAA-00006", "7-AAAAA-00003"}},
		{"p2", []string{"7-AAAAA-00001", "7-AAAAA-00004"}},
		{"gone-anchor", []string{"7-AAAAA-00005"}},
	}
	if !slices.EqualFunc(got, want, func(a, b group) bool { return a.anchor == b.anchor && slices.Equal(a.codes, b.codes) }) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	if g := d.Groups[1]; g.Title != "一、总体要求" || g.URL != "https://consult.example.gov.cn/d/hongya-fazhi-2026#p1" {
		t.Errorf("group p1: title %q url %q", g.Title, g.URL)
	}
	n := 0
	for _, es := range entries {
		for _, e := range es {
			n++
			if e.N != n {
				t.Errorf("comment %s numbered %d, want %d", e.Code, e.N, n)
			}
			if e.ReceivedAt.Location() != shanghai {
				t.Errorf("comment %s time in %v", e.Code, e.ReceivedAt.Location())
			}
		}
	}
}

func TestBuildNoComments(t *testing.T) {
	d := build(t, fixtureDraft(), nil, Options{GeneratedAt: at("2026-12-01T10:05:00Z")})
	text := renderAll(t, d).text
	if !strings.Contains(string(text), "意见总数 Comments: 0") || !strings.Contains(string(text), "尚无意见") {
		t.Errorf("empty digest text:\n%s", text)
	}
	if d.Zone != "Asia/Shanghai" {
		t.Errorf("default zone = %q", d.Zone)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name    string
		publish bool
		bureau  string
		public  string
	}{
		{"张三", false, "张三", "张*"},
		{"欧阳修", false, "欧阳修", "欧*"},
		{"张三", true, "张三", "张三"},
		{"  ", true, "（未留姓名 none given）", "匿名"},
		{"", false, "（未留姓名 none given）", "匿名"},
		{"Li Wei", false, "Li Wei", "L*"},
		{"\xff\xfe", false, "\xff\xfe", "匿名"},
	}
	for _, tt := range tests {
		c := comments.Comment{Name: tt.name, PublishName: tt.publish}
		if got := entry(c, Bureau, shanghai).Name; got != tt.bureau {
			t.Errorf("bureau name of %q = %q, want %q", tt.name, got, tt.bureau)
		}
		if got := entry(c, Public, shanghai).Name; got != tt.public {
			t.Errorf("public name of %q (publish %v) = %q, want %q", tt.name, tt.publish, got, tt.public)
		}
	}
}

func TestSubject(t *testing.T) {
	d := fixtureDigest(t, Bureau)
	if got, want := d.Subject(), "【意见汇总】洪雅县法治政府建设实施方案（征求意见稿）（截止 2026-12-01 18:00）"; got != want {
		t.Errorf("Subject() = %q, want %q", got, want)
	}
	d.Interim = true
	if got := d.Subject(); !strings.HasPrefix(got, "【意见汇总·中期 Interim】") {
		t.Errorf("interim Subject() = %q", got)
	}
	// The deadline is shown in the configured zone.
	utc := build(t, fixtureDraft(), nil, Options{Location: time.UTC})
	if got := utc.Subject(); !strings.HasSuffix(got, "（截止 2026-12-01 10:00）") {
		t.Errorf("UTC Subject() = %q", got)
	}
	long := fixtureDraft()
	long.Title = strings.Repeat("长", 300) + "\n标题"
	got := build(t, long, nil, Options{}).Subject()
	if n := len([]rune(got)); n > maxSubjectTitle+30 || strings.Contains(got, "\n") || !strings.Contains(got, "…") {
		t.Errorf("long Subject() has %d runes: %q", n, got)
	}
}

func TestHTMLEscapesAndLoadsNothing(t *testing.T) {
	s := string(renderAll(t, fixtureDigest(t, Bureau)).html)
	if strings.Contains(s, "<script") || strings.Contains(s, "<b>整体") {
		t.Error("markup from a comment body reached the HTML unescaped")
	}
	if !strings.Contains(s, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;整体&lt;/b&gt;赞同。") {
		t.Error("escaped body not found in the HTML")
	}
	for _, bad := range []string{"src=", "<link", "url(", "@import", "<img", "<style"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML contains %q: a digest must load nothing", bad)
		}
	}
}

func TestPublicCopyHasNoContacts(t *testing.T) {
	d := fixtureDigest(t, Public)
	r := renderAll(t, d)
	// html/template writes "+" as "&#43;": look at the HTML as a reader sees it.
	for part, body := range map[string][]byte{"text": r.text, "html": []byte(html.UnescapeString(string(r.html))), "csv": r.csv, "subject": []byte(d.Subject())} {
		for _, c := range contacts {
			if bytes.Contains(body, []byte(c)) {
				t.Errorf("public %s contains the contact %q", part, c)
			}
		}
		// Names without consent stay out too.
		for _, n := range []string{"张三", "欧阳修", "Li Wei"} {
			if bytes.Contains(body, []byte(n)) {
				t.Errorf("public %s contains the unpublished name %q", part, n)
			}
		}
		for _, label := range []string{"联系方式", "contact"} {
			if bytes.Contains(body, []byte(label)) && part != "text" && part != "html" {
				t.Errorf("public %s has a %q field", part, label)
			}
		}
	}
	for _, es := range groupEntries(t, d) {
		for _, e := range es {
			if e.Contact != "" || e.RawName != "" {
				t.Errorf("public entry %s carries contact %q / raw name %q", e.Code, e.Contact, e.RawName)
			}
		}
	}
	// The bureau's copy has every contact, in each part.
	b := renderAll(t, fixtureDigest(t, Bureau))
	for part, body := range map[string][]byte{"text": b.text, "html": []byte(html.UnescapeString(string(b.html))), "csv": b.csv} {
		for _, c := range contacts {
			if !bytes.Contains(body, []byte(c)) {
				t.Errorf("bureau %s lacks the contact %q", part, c)
			}
		}
	}
}

// readCSV parses a digest CSV as a spreadsheet would, after checking the BOM.
func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatalf("CSV does not start with a UTF-8 BOM: % x", b[:min(3, len(b))])
	}
	rows, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	return rows
}

func TestCSVRoundTrip(t *testing.T) {
	for _, a := range []Audience{Bureau, Public} {
		t.Run(a.String(), func(t *testing.T) {
			b := renderAll(t, fixtureDigest(t, a)).csv
			if !bytes.Contains(b, []byte("\r\n")) {
				t.Error("CSV rows do not end in CR LF")
			}
			rows := readCSV(t, b)
			header := rows[0]
			col := map[string]int{}
			for i, h := range header {
				col[h[strings.LastIndexByte(h, ' ')+1:]] = i
			}
			wantCols := []string{"receipt_code", "received_at", "section_anchor", "section_label", "category", "name", "publish_name", "body", "sha256", "duplicate"}
			if a == Bureau {
				wantCols = append(wantCols, "contact")
			}
			if len(header) != len(wantCols) {
				t.Errorf("header %q, want columns %q", header, wantCols)
			}
			for _, c := range wantCols {
				if _, ok := col[c]; !ok {
					t.Errorf("no column %q in %q", c, header)
				}
			}
			byCode := map[string]comments.Comment{}
			for _, c := range fixtureComments() {
				byCode[c.Code] = c
			}
			if len(rows)-1 != len(byCode) {
				t.Fatalf("%d rows, want %d", len(rows)-1, len(byCode))
			}
			for _, row := range rows[1:] {
				c, ok := byCode[row[col["receipt_code"]]]
				if !ok {
					t.Errorf("row for unknown or repeated code: %q", row)
					continue
				}
				delete(byCode, c.Code)
				got := func(name string) string { return undefuse(row[col[name]]) }
				// encoding/csv, like a spreadsheet, reads a CR LF inside a quoted
				// cell as LF.
				c.Body = strings.ReplaceAll(c.Body, "\r\n", "\n")
				when, err := time.Parse(time.RFC3339, got("received_at"))
				if err != nil || !when.Equal(c.ReceivedAt) || !strings.HasSuffix(got("received_at"), "+08:00") {
					t.Errorf("%s received_at %q, want %v in +08:00", c.Code, got("received_at"), c.ReceivedAt)
				}
				if got("section_anchor") != c.Section || got("category") != string(c.Category) ||
					got("body") != c.Body || got("sha256") != c.SHA256 || got("publish_name") != strconv.FormatBool(c.PublishName) ||
					got("duplicate") != strconv.FormatBool(c.Duplicate) {
					t.Errorf("%s round trip: %q", c.Code, row)
				}
				wantName := c.Name
				if a == Public {
					wantName = entry(c, Public, shanghai).Name
				} else if got("contact") != c.Contact {
					t.Errorf("%s contact %q, want %q", c.Code, got("contact"), c.Contact)
				}
				if got("name") != wantName {
					t.Errorf("%s name %q, want %q", c.Code, got("name"), wantName)
				}
			}
		})
	}
}

// undefuse reverses defuseFormula.
func undefuse(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

func TestCSVDefusesFormulas(t *testing.T) {
	rows := readCSV(t, renderAll(t, fixtureDigest(t, Bureau)).csv)
	bodies := map[string]string{}
	for _, r := range rows[1:] {
		bodies[r[0]] = r[8]
	}
	want := map[string]string{
		"7-AAAAA-00003": `'=HYPERLINK("http://evil.example","点这里")`,
		"7-AAAAA-00004": "'-2+3 是第一行\n第二行\n第三行", // the reader turns CR LF into LF
		"7-AAAAA-00005": "'@SUM(A1:A2)",
		"7-AAAAA-00006": "'\tstarts with a tab",
		"7-AAAAA-00001": "建议在“主要任务”中增加行政执法公示的具体时限。",
	}
	for code, w := range want {
		if bodies[code] != w {
			t.Errorf("%s body cell %q, want %q", code, bodies[code], w)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"=1+1", "'=1+1"}, {"+1", "'+1"}, {"-1", "'-1"}, {"@x", "'@x"}, {"\tx", "'\tx"}, {"\rx", "'\rx"},
		{"", ""}, {"a=1", "a=1"}, {"＝1", "＝1"}, {"'=1", "'=1"},
	} {
		if got := defuseFormula(tt.in); got != tt.want {
			t.Errorf("defuseFormula(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := fixtureDigest(t, Bureau).CSVFilename(); got != "hongya-fazhi-2026-comments.csv" {
		t.Errorf("CSVFilename() = %q", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBuildManyGroups: more groups than the spill keeps files open, their
// comments interleaved, still come out whole and in order.
func TestBuildManyGroups(t *testing.T) {
	d := fixtureDraft()
	var cs []comments.Comment
	const anchors, rounds = 3 * maxOpenSpills, 4
	for r := range rounds {
		for a := range anchors {
			i := r*anchors + a
			cs = append(cs, comments.Comment{Code: fmt.Sprintf("7-MANY-%05d", i), Entry: fmt.Sprintf("%d-0", i+1),
				Section: fmt.Sprintf("gone-%03d", a), Body: fmt.Sprint(i), Category: comments.CategoryOther, ReceivedAt: at("2026-11-02T00:00:00Z")})
		}
	}
	dg := build(t, d, cs, Options{Location: shanghai})
	if len(dg.Groups) != anchors || dg.Total != anchors*rounds {
		t.Fatalf("%d groups, %d comments; want %d, %d", len(dg.Groups), dg.Total, anchors, anchors*rounds)
	}
	for a, es := range groupEntries(t, dg) {
		if dg.Groups[a].Anchor != fmt.Sprintf("gone-%03d", a) {
			t.Fatalf("group %d is %q: not in the order of first comment", a, dg.Groups[a].Anchor)
		}
		for r, e := range es {
			if want := fmt.Sprintf("7-MANY-%05d", r*anchors+a); e.Code != want {
				t.Fatalf("group %d entry %d is %s, want %s", a, r, e.Code, want)
			}
		}
	}
}

func TestRemoveStaleSpills(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{spillPrefix + "old": 2 * time.Hour, spillPrefix + "new": time.Minute, "other": 2 * time.Hour} {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeStaleSpills(dir, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	var left []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		left = append(left, de.Name())
	}
	if want := []string{spillPrefix + "new", "other"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
