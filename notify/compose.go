package notify

import (
	"bytes"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"time"
)

// Mail servers refuse messages over 25-50 MB, and at 20k comments a digest
// was 54 MB. So a digest goes by e-mail whole only while the encoded message
// stays under Config.MaxBytes; past it the e-mail carries the summary and links
// to the files (see links.go), and says so plainly: never a list cut short that
// could pass for the whole.

// mimeAllowance bounds what a message adds to its encoded parts: headers, the
// subject, boundaries and part headers take under 2 KB.
const mimeAllowance = 16 << 10

// errOverSize stops rendering a digest that cannot fit the e-mail.
var errOverSize = errors.New("notify: digest over the e-mail size limit")

// budgetWriter keeps a part of the e-mail in memory until the raw bytes of all
// the parts sharing its budget pass the limit: encoding only adds, so the
// message would be over too. Memory is thus bounded by the limit, not by the
// draft.
type budgetWriter struct {
	buf  bytes.Buffer
	used *int64
	max  int64
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	*w.used += int64(len(p))
	if *w.used > w.max {
		return 0, errOverSize
	}
	return w.buf.Write(p)
}

// encodedSize is what a message with these parts weighs on the wire, as
// jordan-wright/email writes it: the bodies quoted-printable (with the standard
// library's writer, so the count is exact), the CSV in base64 lines of 76.
func encodedSize(text, html, csv []byte) int64 {
	return qpLen(text) + qpLen(html) + b64Len(int64(len(csv))) + mimeAllowance
}

func qpLen(b []byte) int64 {
	var c countWriter
	w := quotedprintable.NewWriter(&c)
	_, _ = w.Write(b)
	_ = w.Close()
	return c.n
}

// b64Len is 4 characters per 3 bytes, and CR LF after every 57 bytes (76
// characters) and after the last line.
func b64Len(n int64) int64 {
	return 4*((n+2)/3) + 2*((n+56)/57)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// mailBody renders the e-mail of a digest: the whole digest when its message
// fits maxBytes, else the summary with links that work until expires. It
// reports which it chose.
func mailBody(dg *Digest, maxBytes int64, links func(file string) string, expires time.Time) (r Rendered, whole bool, err error) {
	r = Rendered{Subject: dg.Subject()}
	var used int64
	text := &budgetWriter{used: &used, max: maxBytes}
	html := &budgetWriter{used: &used, max: maxBytes}
	csv := &budgetWriter{used: &used, max: maxBytes}
	err = dg.WriteAll(text, html, csv)
	if err == nil && encodedSize(text.buf.Bytes(), html.buf.Bytes(), csv.buf.Bytes()) <= maxBytes {
		r.Text, r.HTML, r.CSV, r.CSVFilename = text.buf.Bytes(), html.buf.Bytes(), csv.buf.Bytes(), dg.CSVFilename()
		return r, true, nil
	}
	if err != nil && !errors.Is(err, errOverSize) {
		return Rendered{}, false, err
	}
	text, html, csv = nil, nil, nil // let the partial renders go before the summary

	v := summaryView{Digest: dg, Limit: humanBytes(maxBytes), Expires: expires.In(dg.loc)}
	for _, f := range linkFiles {
		v.Links = append(v.Links, summaryLink{Label: fileKinds[f].label, URL: links(f)})
	}
	if r.Text, err = v.render("text", textTemplate, "txt."); err != nil {
		return Rendered{}, false, err
	}
	if r.HTML, err = v.render("html", htmlTemplate, "html."); err != nil {
		return Rendered{}, false, err
	}
	return r, false, nil
}

// summaryView is what the summary templates see: the digest's head and foot,
// and in place of the comments, where they are.
type summaryView struct {
	*Digest
	Limit   string    // "10 MB"
	Expires time.Time // when the links stop working, in the digest's location
	Links   []summaryLink
}

type summaryLink struct {
	Label string
	URL   string
}

func (v summaryView) render(kind string, t executor, prefix string) ([]byte, error) {
	var b bytes.Buffer
	for _, part := range []struct {
		name string
		data any
	}{{"head", v.Digest}, {"summary", v}, {"foot", v.Digest}} {
		if err := t.ExecuteTemplate(&b, prefix+part.name, part.data); err != nil {
			return nil, fmt.Errorf("notify: render summary %s %s: %w", kind, v.DraftID, err)
		}
	}
	return b.Bytes(), nil
}

// humanBytes shows a size in MB (10^6 bytes, as mail servers state their
// limits), or in KB below one.
func humanBytes(n int64) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d KB", (n+999)/1000)
}
