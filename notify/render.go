package notify

import (
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	htmltemplate "html/template"
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
	"indent": func(s string) string {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
	},
}

// Parsed once when the package loads, so that a broken template stops the process
// at boot rather than at the first closed window.
var (
	textTemplate = texttemplate.Must(texttemplate.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/digest.txt.tmpl"))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/digest.html.tmpl"))
)

// Rendered is a digest rendered once, for as many recipients as it has.
type Rendered struct {
	Subject     string
	Text        []byte
	HTML        []byte
	CSV         []byte
	CSVFilename string
}

// Render renders the subject, both bodies and the CSV.
func (d Digest) Render() (Rendered, error) {
	r := Rendered{Subject: d.Subject(), CSVFilename: d.CSVFilename()}
	var err error
	if r.Text, err = d.Text(); err != nil {
		return Rendered{}, err
	}
	if r.HTML, err = d.HTML(); err != nil {
		return Rendered{}, err
	}
	if r.CSV, err = d.CSV(); err != nil {
		return Rendered{}, err
	}
	return r, nil
}

// Text renders the plain-text body.
func (d Digest) Text() ([]byte, error) {
	var b bytes.Buffer
	if err := textTemplate.ExecuteTemplate(&b, "digest.txt", d); err != nil {
		return nil, fmt.Errorf("notify: render text %s: %w", d.DraftID, err)
	}
	return b.Bytes(), nil
}

// HTML renders the HTML body: every value escaped by html/template, styles inline,
// nothing loaded from elsewhere (mail clients block remote content, and a digest
// must read the same offline and in an archive).
func (d Digest) HTML() ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTemplate.ExecuteTemplate(&b, "digest.html", d); err != nil {
		return nil, fmt.Errorf("notify: render html %s: %w", d.DraftID, err)
	}
	return b.Bytes(), nil
}

// CSVFilename is the attachment's name: "<draft-id>-comments.csv", with
// "-interim" for an interim digest and "-public" for the public copy.
func (d Digest) CSVFilename() string {
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

// CSV renders one row per comment, in the order the bodies show them, after a
// header row. The public copy has no contact column at all. Cells that a
// spreadsheet would run as a formula are defused with a leading apostrophe.
func (d Digest) CSV() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(utf8BOM)
	w := csv.NewWriter(&b)
	w.UseCRLF = true // what Excel writes and expects
	header := []string{
		"回执编号 receipt_code", "收到时间 received_at", "章节锚点 section_anchor", "章节 section_label",
		"类别 category", "姓名 name", "联系方式 contact", "同意公开姓名 publish_name", "意见 body", "校验值 sha256",
	}
	const contactCol = 6
	if d.Audience == Public {
		header = append(header[:contactCol:contactCol], header[contactCol+1:]...)
	}
	if err := w.Write(header); err != nil {
		return nil, fmt.Errorf("notify: render csv %s: %w", d.DraftID, err)
	}
	for _, g := range d.Groups {
		label := g.Title
		if g.Anchor == "" {
			label = "全文 whole draft"
		}
		for _, e := range g.Comments {
			name := e.Name
			if d.Audience == Bureau {
				name = e.RawName
			}
			row := []string{
				e.Code, e.ReceivedAt.Format(time.RFC3339), g.Anchor, label,
				string(e.Category), name, e.Contact, strconv.FormatBool(e.PublishName), e.Body, e.SHA256,
			}
			if d.Audience == Public {
				row = append(row[:contactCol:contactCol], row[contactCol+1:]...)
			}
			for i, cell := range row {
				row[i] = defuseFormula(cell)
			}
			if err := w.Write(row); err != nil {
				return nil, fmt.Errorf("notify: render csv %s: %w", d.DraftID, err)
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("notify: render csv %s: %w", d.DraftID, err)
	}
	return b.Bytes(), nil
}

// defuseFormula prefixes a cell that Excel, WPS or LibreOffice would evaluate
// (OWASP "CSV injection") with an apostrophe, which they show as text.
func defuseFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
