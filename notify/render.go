package notify

import (
	"bufio"
	"cmp"
	"embed"
	"encoding/csv"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templateFuncs = map[string]any{
	"minute": func(t time.Time) string { return t.Format("2006-01-02 15:04") },
	"second": func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
}

// Parsed once when the package loads, so that a broken template stops the process
// at boot rather than at the first closed window.
var (
	textTemplate = texttemplate.Must(texttemplate.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/digest.txt.tmpl"))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/digest.html.tmpl"))
)

// Rendered is the e-mail made of a digest, once, for as many recipients as it
// has: the whole digest (both bodies and the CSV) when it fits the size limit,
// else the summary with download links.
type Rendered struct {
	Subject     string
	Text        []byte
	HTML        []byte
	CSV         []byte // nil: nothing attached
	CSVFilename string
}

// WriteText renders the plain-text digest to w.
func (d *Digest) WriteText(w io.Writer) error { return d.WriteAll(w, nil, nil) }

// WriteHTML renders the HTML digest to w: every value escaped by html/template,
// styles inline, nothing loaded from elsewhere (mail clients block remote
// content, and a digest must read the same offline and in an archive).
func (d *Digest) WriteHTML(w io.Writer) error { return d.WriteAll(nil, w, nil) }

// WriteCSV renders the CSV to w: one row per comment, in the order the bodies
// show them, after a header row. The public copy has no contact column at all.
// Cells that a spreadsheet would run as a formula are defused with a leading
// apostrophe.
func (d *Digest) WriteCSV(w io.Writer) error { return d.WriteAll(nil, nil, w) }

// WriteAll renders the text, HTML and CSV digests in one pass over the comments;
// a nil writer skips its format. Memory stays that of one comment at a time.
func (d *Digest) WriteAll(text, html, csv io.Writer) error {
	var rs []renderer
	if text != nil {
		rs = append(rs, newTemplateRenderer("text", textTemplate, "txt.", text, d.Public(), writeTextEntry))
	}
	if html != nil {
		rs = append(rs, newTemplateRenderer("html", htmlTemplate, "html.", html, d.Public(), writeHTMLEntry))
	}
	if csv != nil {
		rs = append(rs, newCSVRenderer(csv, d.Audience))
	}
	if err := d.render(rs); err != nil {
		return fmt.Errorf("notify: render %s: %w", d.DraftID, err)
	}
	return nil
}

// renderer is one output format, fed the digest's parts in order.
type renderer interface {
	head(d *Digest) error
	group(g Group) error
	entry(g Group, e Entry) error
	none() error // in place of the groups when there are none
	foot(d *Digest) error
	flush() error
}

func (d *Digest) render(rs []renderer) error {
	each := func(fn func(r renderer) error) error {
		for _, r := range rs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	if err := each(func(r renderer) error { return r.head(d) }); err != nil {
		return err
	}
	if len(d.Groups) == 0 {
		if err := each(func(r renderer) error { return r.none() }); err != nil {
			return err
		}
	}
	n := 1
	for _, g := range d.Groups {
		if err := each(func(r renderer) error { return r.group(g) }); err != nil {
			return err
		}
		err := d.entries(g, n, func(e Entry) error {
			return each(func(r renderer) error { return r.entry(g, e) })
		})
		if err != nil {
			return err
		}
		n += g.Count
	}
	if err := each(func(r renderer) error { return r.foot(d) }); err != nil {
		return err
	}
	return each(func(r renderer) error { return r.flush() })
}

// executor is what text/template and html/template have in common.
type executor interface {
	ExecuteTemplate(w io.Writer, name string, data any) error
}

// templateRenderer renders a format from its templates "<prefix>head",
// "group", "none" and "foot", one execution per part (a template over the whole
// digest would need every comment in memory at once), and each comment with a
// hand-written writer: executing a template per comment, with its reflection,
// took three quarters of the time of building a large digest.
type templateRenderer struct {
	kind       string
	t          executor
	prefix     string
	w          *bufio.Writer
	public     bool
	writeEntry func(w *bufio.Writer, e Entry, public bool)
}

func newTemplateRenderer(kind string, t executor, prefix string, w io.Writer, public bool,
	writeEntry func(*bufio.Writer, Entry, bool)) *templateRenderer {
	return &templateRenderer{kind: kind, t: t, prefix: prefix, w: bufio.NewWriterSize(w, 64<<10), public: public, writeEntry: writeEntry}
}

func (r *templateRenderer) exec(name string, data any) error {
	if err := r.t.ExecuteTemplate(r.w, r.prefix+name, data); err != nil {
		return fmt.Errorf("%s: %w", r.kind, err)
	}
	return nil
}

func (r *templateRenderer) head(d *Digest) error { return r.exec("head", d) }
func (r *templateRenderer) group(g Group) error  { return r.exec("group", g) }
func (r *templateRenderer) none() error          { return r.exec("none", nil) }
func (r *templateRenderer) foot(d *Digest) error { return r.exec("foot", d) }
func (r *templateRenderer) flush() error         { return r.w.Flush() }

// entry writes one comment. The writer's error is sticky, and an empty write
// returns it: checked after each comment, so that a digest past the e-mail's
// size limit stops at once instead of formatting the rest for nothing.
func (r *templateRenderer) entry(_ Group, e Entry) error {
	r.writeEntry(r.w, e, r.public)
	if _, err := r.w.Write(nil); err != nil {
		return fmt.Errorf("%s: %w", r.kind, err)
	}
	return nil
}

// The comment's lines of the text digest (see txt.group in digest.txt.tmpl for
// what comes before the first).
func writeTextEntry(w *bufio.Writer, e Entry, public bool) {
	var num [32]byte
	w.WriteString("\n\n[")
	w.Write(strconv.AppendInt(num[:0], int64(e.N), 10))
	w.WriteString("] 回执编号 Receipt: ")
	w.WriteString(e.Code)
	w.WriteString("\n    收到时间 Received: ")
	w.Write(e.ReceivedAt.AppendFormat(num[:0], "2006-01-02 15:04:05"))
	w.WriteString("\n    类别 Category: ")
	w.WriteString(e.CategoryLabel)
	if e.Duplicate {
		w.WriteString("\n    重复 Duplicate: 同一来源此前已提交相同内容 the same sender had sent this text before")
	}
	w.WriteString("\n    姓名 Name: ")
	w.WriteString(e.Name)
	if !public {
		w.WriteString("\n    联系方式 Contact: ")
		w.WriteString(cmp.Or(e.Contact, "（未留 none given）"))
		w.WriteString("\n    同意公开姓名 Name may be published: ")
		w.WriteString(yesNo(e.PublishName))
	}
	w.WriteString("\n    校验值 SHA-256: ")
	w.WriteString(e.SHA256)
	w.WriteString("\n    意见 Comment:\n")
	writeIndented(w, e.Body)
}

// writeIndented writes a body indented by four spaces, its line ends made LF
// and its trailing ones dropped.
func writeIndented(w *bufio.Writer, s string) {
	s = strings.TrimRight(s, "\r\n")
	w.WriteString("    ")
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			w.WriteString(s)
			return
		}
		w.WriteString(s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		w.WriteString("\n    ")
		s = s[i+1:]
	}
}

func yesNo(b bool) string {
	if b {
		return "是 yes"
	}
	return "否 no"
}

// writeHTMLEntry writes one comment of the HTML digest: every value escaped
// with html/template's HTMLEscapeString (the markup around them is constant).
func writeHTMLEntry(w *bufio.Writer, e Entry, public bool) {
	esc := func(s string) { w.WriteString(htmltemplate.HTMLEscapeString(s)) }
	var num [32]byte
	w.WriteString("\n<div style=\"margin:0 0 12px 0;padding:8px 12px;border:1px solid #d1d9e0;border-radius:4px;\">\n" +
		"<p style=\"margin:0 0 6px 0;font-size:13px;color:#59636e;\">[")
	w.Write(strconv.AppendInt(num[:0], int64(e.N), 10))
	w.WriteString("] 回执编号 Receipt <span style=\"font-family:monospace;color:#1f2328;\">")
	esc(e.Code)
	w.WriteString("</span> · 收到时间 Received ")
	w.Write(e.ReceivedAt.AppendFormat(num[:0], "2006-01-02 15:04:05"))
	w.WriteString(" · ")
	esc(e.CategoryLabel)
	if e.Duplicate {
		w.WriteString(" · <strong style=\"color:#9a6700;\">重复 Duplicate</strong>（同一来源此前已提交相同内容 the same sender had sent this text before）")
	}
	w.WriteString("</p>\n<p style=\"margin:0 0 6px 0;font-size:13px;\">姓名 Name: ")
	esc(e.Name)
	if !public {
		w.WriteString(" · 联系方式 Contact: ")
		esc(cmp.Or(e.Contact, "（未留 none given）"))
		w.WriteString(" · 同意公开姓名 Name may be published: ")
		w.WriteString(yesNo(e.PublishName))
	}
	w.WriteString("</p>\n<div style=\"white-space:pre-wrap;word-break:break-word;margin:0;\">")
	esc(e.Body)
	w.WriteString("</div>\n<p style=\"margin:6px 0 0 0;font-size:11px;color:#818b98;font-family:monospace;\">SHA-256 ")
	esc(e.SHA256)
	w.WriteString("</p>\n</div>")
}

// CSVFilename is the attachment's name: "<draft-id>-comments.csv", with
// "-interim" for an interim digest and "-public" for the public copy.
func (d *Digest) CSVFilename() string {
	name := d.DraftID
	if d.Interim {
		name += "-interim"
	}
	if d.Audience == Public {
		name += "-public"
	}
	return name + "-comments.csv"
}

// utf8BOM makes Excel and WPS read the file as UTF-8 instead of the system's
// code page (GBK on Chinese Windows).
const utf8BOM = "\xEF\xBB\xBF"

// csvRenderer writes the CSV; it has no heading rows per section, so group and
// none write nothing.
type csvRenderer struct {
	bw     *bufio.Writer
	w      *csv.Writer
	public bool
	row    []string
}

// csvContactCol is the contact column, which the public copy leaves out.
const csvContactCol = 6

func newCSVRenderer(w io.Writer, a Audience) *csvRenderer {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true // what Excel writes and expects
	return &csvRenderer{bw: bw, w: cw, public: a == Public}
}

func (r *csvRenderer) write(row []string) error {
	if r.public {
		row = append(row[:csvContactCol:csvContactCol], row[csvContactCol+1:]...)
	}
	if err := r.w.Write(row); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

func (r *csvRenderer) head(*Digest) error {
	if _, err := r.bw.WriteString(utf8BOM); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return r.write([]string{
		"回执编号 receipt_code", "收到时间 received_at", "章节锚点 section_anchor", "章节 section_label",
		"类别 category", "姓名 name", "联系方式 contact", "同意公开姓名 publish_name", "意见 body", "校验值 sha256", "重复提交 duplicate",
	})
}

func (r *csvRenderer) group(Group) error { return nil }
func (r *csvRenderer) none() error       { return nil }

func (r *csvRenderer) entry(g Group, e Entry) error {
	label := g.Title
	if g.Anchor == "" {
		label = "全文 whole draft"
	}
	name := e.Name
	if !r.public {
		name = e.RawName
	}
	r.row = append(r.row[:0], e.Code, e.ReceivedAt.Format(time.RFC3339), g.Anchor, label,
		string(e.Category), name, e.Contact, strconv.FormatBool(e.PublishName), e.Body, e.SHA256, strconv.FormatBool(e.Duplicate))
	for i, cell := range r.row {
		r.row[i] = defuseFormula(cell)
	}
	return r.write(r.row)
}

func (r *csvRenderer) foot(*Digest) error { return nil }

func (r *csvRenderer) flush() error {
	r.w.Flush()
	if err := r.w.Error(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	if err := r.bw.Flush(); err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	return nil
}

// defuseFormula prefixes a cell that Excel, WPS or LibreOffice would evaluate
// (OWASP "CSV injection") with an apostrophe, which they show as text.
func defuseFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
