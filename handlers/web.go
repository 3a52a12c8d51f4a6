package handlers

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"consult/comments"
	"consult/drafts"
	"consult/static"
)

// pages are the parsed templates, one set per page (each the layout plus the page's
// "content"), and the assets by the hashed name they are served under.
type pages struct {
	tmpl  map[string]*template.Template
	files map[string]static.Asset // by hashed file name
	urls  map[string]string       // asset name -> /static/<hashed name>
	zone  *time.Location
}

var pageNames = []string{"list", "draft", "comment", "receipt", "lookup", "error"}

// newPages parses every template once; an error here stops the process at boot.
func newPages(loc *time.Location) (*pages, error) {
	assets, err := static.Assets()
	if err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}
	p := &pages{tmpl: map[string]*template.Template{}, files: map[string]static.Asset{}, urls: map[string]string{}, zone: loc}
	for name, a := range assets {
		p.files[a.File] = a
		p.urls[name] = "/static/" + a.File
	}
	funcs := template.FuncMap{
		// asset is an asset's hashed URL; an unknown name fails the page (and the tests).
		"asset": func(name string) (string, error) {
			u, ok := p.urls[name]
			if !ok {
				return "", fmt.Errorf("no asset %q", name)
			}
			return u, nil
		},
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(static.Templates(), "layout.html")
	if err != nil {
		return nil, fmt.Errorf("handlers: templates: %w", err)
	}
	for _, name := range pageNames {
		b, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("handlers: templates: %w", err)
		}
		t, err := b.ParseFS(static.Templates(), name+".html")
		if err != nil {
			return nil, fmt.Errorf("handlers: templates: %w", err)
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// view is what every page's template gets: the formatter for the person's language
// (embedded, so {{.T "key"}} works), the layout's parts, and the page's own data.
type view struct {
	tr
	Title     string
	Nav       string // the nav entry to mark current: "list", "lookup" or ""
	SwitchURL string // this page in the other language
	Page      any
}

func (v view) HTMLLang() string  { return string(v.Lang) }
func (v view) OtherLang() string { return string(v.Lang.other()) }

func (s *server) view(c echo.Context, now time.Time, nav string) view {
	l := s.negotiate(c)
	u := *c.Request().URL
	q := u.Query()
	q.Set("lang", l.other().short())
	return view{tr: tr{Lang: l, zone: s.Location, now: now}, Nav: nav, SwitchURL: u.Path + "?" + q.Encode()}
}

// render writes a page. Pages are never cached: they hold the time left, and forms
// hold a CSRF token and what a person typed.
func (s *server) render(c echo.Context, status int, name string, v view) error {
	var b bytes.Buffer
	if err := s.pages.tmpl[name].ExecuteTemplate(&b, "layout", v); err != nil {
		return fmt.Errorf("handlers: render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Add(echo.HeaderVary, "Accept-Language")
	if !strings.Contains(strings.Join(h.Values(echo.HeaderVary), ","), echo.HeaderCookie) {
		h.Add(echo.HeaderVary, echo.HeaderCookie)
	}
	return c.HTMLBlob(status, b.Bytes())
}

// draftItem is a draft in the list.
type draftItem struct {
	drafts.Draft
	Open, Upcoming bool
	Status         drafts.Status
	Count          int64
}

type draftGroup struct {
	Key, Heading, None string
	Items              []draftItem
}

func (s *server) listPage(c echo.Context) error {
	ctx := c.Request().Context()
	now := s.Now()
	ds, err := s.Drafts.List(ctx, now)
	if err != nil {
		return err
	}
	groups := []draftGroup{
		{Key: "open", Heading: "list.open", None: "list.none.open"},
		{Key: "upcoming", Heading: "list.upcoming", None: "list.none.upcoming"},
		{Key: "closed", Heading: "list.closed", None: "list.none.closed"},
	}
	for _, d := range ds {
		n, err := s.Comments.Counts(ctx, d.ID)
		if err != nil {
			return err
		}
		st := d.StatusAt(now)
		it := draftItem{Draft: d, Status: st, Open: st == drafts.StatusOpen, Upcoming: st == drafts.StatusUpcoming, Count: n.Submitted}
		i := map[drafts.Status]int{drafts.StatusOpen: 0, drafts.StatusUpcoming: 1, drafts.StatusClosed: 2}[st]
		groups[i].Items = append(groups[i].Items, it)
	}
	v := s.view(c, now, "list")
	v.Title, v.Page = v.T("list.title"), groups
	return s.render(c, http.StatusOK, "list", v)
}

// sectionView is a section as the draft page shows it: a title line when the
// section has one, and the rest of its text.
type sectionView struct {
	Anchor string
	// Title is the label line as written ("一、总体要求") when it is a heading.
	Title string
	// Body is the text below the title, or all of it when it has none.
	Body string
	// Name says which section a link is for, to screen readers: "一、 总体要求".
	Name string
	// Level is the indent, 0 to 4; H the heading element, 3 to 5.
	Level, H int
}

func sectionViews(t tr, ss []drafts.Section) []sectionView {
	out := make([]sectionView, 0, len(ss))
	for _, s := range ss {
		out = append(out, newSectionView(t, s))
	}
	return out
}

func newSectionView(t tr, s drafts.Section) sectionView {
	v := sectionView{Anchor: s.Anchor, Level: min(max(s.Level, 0), 4), H: min(max(s.Level+2, 3), 5)}
	text := strings.Trim(s.Text, "\n")
	if s.Heading != "" {
		first, rest, _ := strings.Cut(text, "\n")
		v.Title, v.Body = strings.TrimSpace(first), strings.Trim(rest, "\n")
	} else {
		v.Body = text
	}
	v.Name = sectionName(t, s)
	return v
}

// sectionName names a section in a line: its first line as written, cut short.
func sectionName(t tr, s drafts.Section) string {
	if s.Label == "" {
		return t.T("draft.preamble")
	}
	first, _, _ := strings.Cut(strings.TrimSpace(s.Text), "\n")
	if r := []rune(strings.TrimSpace(first)); len(r) > 30 {
		return string(r[:30]) + "…"
	}
	return strings.TrimSpace(first)
}

type draftData struct {
	D              drafts.Draft
	Status         drafts.Status
	Open, Upcoming bool
	Count          int64
	Sections       []sectionView
}

func (s *server) draftPage(c echo.Context) error {
	d, n, err := s.draftAndCount(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	now := s.Now()
	v := s.view(c, now, "")
	st := d.StatusAt(now)
	v.Title = d.Title
	v.Page = draftData{D: d, Status: st, Open: st == drafts.StatusOpen, Upcoming: st == drafts.StatusUpcoming,
		Count: n, Sections: sectionViews(v.tr, d.Sections)}
	return s.render(c, http.StatusOK, "draft", v)
}

// formData is the comment form, blank or as the person filled it in.
type formData struct {
	D       drafts.Draft
	Section *sectionView // nil: the whole draft
	// SectionAnchor is the hidden field: the section the comment is on.
	SectionAnchor                string
	Body, Name, Contact          string
	Category                     comments.Category
	Publish                      bool
	CSRF, IdempotencyKey         string
	Errors                       map[string]string // field -> message
	ErrorList                    []fieldMsg        // the same, in page order, for the summary
	Notice                       string            // why the form came back, when not a field's fault
	ShowForm, CanSubmit          bool
	Categories                   []comments.Category
	BodyCount                    int
	MaxBody, MaxName, MaxContact int
	// CounterJS and CounterOver are the live counter's texts, for app.js.
	CounterJS, CounterOver string
}

// fieldMsg is one line of the error summary; ID is the element it links to.
type fieldMsg struct{ ID, Label, Msg string }

// Err is the message for one field, or "".
func (f formData) Err(field string) string { return f.Errors[field] }

func (s *server) newForm(c echo.Context, t tr, d drafts.Draft) formData {
	f := formData{D: d, CSRF: csrfToken(c), Categories: comments.Categories, Category: comments.CategoryIndividual,
		MaxBody: comments.MaxBody, MaxName: comments.MaxName, MaxContact: comments.MaxContact,
		CounterJS: t.T("form.counter_js", comments.MaxBody), CounterOver: t.T("form.counter_over")}
	return f
}

func (f *formData) setSection(t tr, anchor string) bool {
	f.Section, f.SectionAnchor = nil, ""
	if anchor == "" {
		return true
	}
	sec, ok := f.D.Section(anchor)
	if !ok {
		return false
	}
	v := newSectionView(t, sec)
	v.Body = strings.Trim(sec.Text, "\n") // the whole text, label line included
	f.Section, f.SectionAnchor = &v, anchor
	return true
}

func (s *server) commentForm(c echo.Context) error {
	d, err := s.Drafts.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	now := s.Now()
	v := s.view(c, now, "")
	f := s.newForm(c, v.tr, d)
	if !f.setSection(v.tr, c.QueryParam("section")) {
		return echo.ErrNotFound
	}
	switch d.StatusAt(now) {
	case drafts.StatusOpen:
		f.ShowForm, f.CanSubmit = true, true
		f.IdempotencyKey = newIdempotencyKey()
	case drafts.StatusUpcoming:
		f.Notice = v.T("form.upcoming_page", v.Date(d.OpensAt), v.Zone())
	default:
		f.Notice = v.T("form.closed_page", v.Date(d.ClosesAt), v.Zone())
	}
	v.Title, v.Page = v.T("form.title")+" - "+d.Title, f
	return s.render(c, http.StatusOK, "comment", v)
}

func (s *server) submitComment(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.Drafts.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return err // BodyLimit's 413 arrives here
	}
	sub := comments.Submission{
		DraftID: d.ID, Section: form.Get("section"), Body: form.Get("body"), Name: form.Get("name"),
		Contact: form.Get("contact"), Category: comments.Category(form.Get("category")),
		PublishName: form.Get("publish_name") != "", IdempotencyKey: form.Get("idempotency_key"),
	}
	r, err := s.Comments.Submit(ctx, sub)
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/receipts/"+url.PathEscape(r.Code)+"?new=1")
	}

	// The form comes back with everything typed, and the reason.
	now := s.Now()
	v := s.view(c, now, "")
	q := url.Values{"lang": {v.Lang.other().short()}}
	if sub.Section != "" {
		q.Set("section", sub.Section)
	}
	v.SwitchURL = "/d/" + url.PathEscape(d.ID) + "/comment?" + q.Encode()
	f := s.newForm(c, v.tr, d)
	f.setSection(v.tr, sub.Section) // an unknown one falls back to the whole draft, and says so
	f.Body, f.Name, f.Contact = strings.ToValidUTF8(sub.Body, "\uFFFD"), strings.ToValidUTF8(sub.Name, "\uFFFD"), strings.ToValidUTF8(sub.Contact, "\uFFFD")
	f.Category, f.Publish, f.IdempotencyKey = sub.Category, sub.PublishName, sub.IdempotencyKey
	f.ShowForm, f.CanSubmit = true, true
	status := http.StatusConflict
	var ve *comments.ValidationError
	switch {
	case errors.As(err, &ve):
		status = http.StatusUnprocessableEntity
		f.Errors, f.ErrorList = fieldMessages(v.tr, sub, ve.Fields)
		if _, bad := ve.Fields["idempotency_key"]; bad {
			f.IdempotencyKey = newIdempotencyKey()
		}
	case errors.Is(err, comments.ErrWindowClosed):
		f.Notice, f.CanSubmit = v.T("form.closed"), false
	case errors.Is(err, comments.ErrWindowNotOpen):
		f.Notice = v.T("form.not_open", v.Date(d.OpensAt), v.Zone())
	case errors.Is(err, comments.ErrIdempotencyMismatch):
		// The person went back after a submission and changed the text: a new key
		// makes the next press a new comment, which is what they now mean.
		f.Notice, f.IdempotencyKey = v.T("form.reused"), newIdempotencyKey()
	default:
		st, _, _ := classify(err)
		if st != http.StatusServiceUnavailable {
			return err
		}
		// Storage is down: no receipt, but the text stays on the page to send again.
		s.Logger.Warn("storage unavailable", "path", c.Path(), "err", err)
		c.Response().Header().Set("Retry-After", "5")
		status, f.Notice = st, v.T("form.unavailable")
	}
	f.BodyCount = runeCount(f.Body)
	v.Title, v.Page = v.T("form.title")+" - "+d.Title, f
	return s.render(c, status, "comment", v)
}

// fieldOrder is the order of fields on the form, for the error summary.
var fieldOrder = []struct{ field, id, label string }{
	{"section", "target", "form.target"},
	{"body", "body", "form.body"},
	{"category", "category", "form.category"},
	{"name", "name", "form.name"},
	{"contact", "contact", "form.contact"},
	{"idempotency_key", "body", "form.title"},
}

// fieldMessages localizes a validation error. The domain says which field is wrong;
// why is worked out again here from the same limits, so that the message can give
// the numbers in the person's language without parsing English.
func fieldMessages(t tr, sub comments.Submission, fields map[string]string) (map[string]string, []fieldMsg) {
	n := sub
	comments.Normalize(&n)
	length := func(v string, limit int) string {
		switch c := runeCount(v); {
		case !utf8.ValidString(v):
			return t.T("err.utf8")
		case c > limit:
			return t.T("err.too_long", limit, c)
		}
		return t.T("err.field")
	}
	msgs := map[string]string{}
	for f := range fields {
		switch f {
		case "body":
			c := runeCount(n.Body)
			switch {
			case !utf8.ValidString(n.Body):
				msgs[f] = t.T("err.utf8")
			case c > comments.MaxBody:
				msgs[f] = t.T("err.body.too_long", comments.MaxBody, c, c-comments.MaxBody)
			case strings.TrimSpace(n.Body) == "":
				msgs[f] = t.T("err.body.required")
			default:
				msgs[f] = t.T("err.field")
			}
		case "name":
			msgs[f] = length(n.Name, comments.MaxName)
		case "contact":
			msgs[f] = length(n.Contact, comments.MaxContact)
		case "section":
			msgs[f] = t.T("err.section")
		case "category":
			msgs[f] = t.T("err.category")
		case "idempotency_key":
			msgs[f] = t.T("err.idempotency")
		default:
			msgs[f] = t.T("err.field")
		}
	}
	var list []fieldMsg
	known := map[string]bool{}
	for _, o := range fieldOrder {
		known[o.field] = true
		if m, ok := msgs[o.field]; ok {
			list = append(list, fieldMsg{ID: o.id, Label: t.T(o.label), Msg: m})
		}
	}
	var rest []string
	for f := range msgs {
		if !known[f] {
			rest = append(rest, f)
		}
	}
	sort.Strings(rest)
	for _, f := range rest {
		list = append(list, fieldMsg{ID: "comment-form", Label: t.T("form.title"), Msg: msgs[f]})
	}
	return msgs, list
}

func runeCount(s string) int { return utf8.RuneCountInString(s) }

// newIdempotencyKey is made when the form is served, so that pressing submit twice,
// or retrying after a lost response, gets the first receipt back.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// csrfToken is the token for a form's hidden field. When the browser sent
// Sec-Fetch-Site the middleware checks that instead and gives a marker, not a
// token; the field is then left empty.
func csrfToken(c echo.Context) string {
	tok, _ := c.Get("csrf").(string)
	if tok == middleware.CSRFUsingSecFetchSite {
		return ""
	}
	return tok
}

type receiptData struct {
	R   comments.ReceiptStatus
	D   drafts.Draft
	New bool
	// Section is the commented section's name as shown on the draft page.
	Section string
}

func (s *server) receiptPage(c echo.Context) error {
	ctx := c.Request().Context()
	rs, err := s.Comments.Lookup(ctx, c.Param("code"))
	if err != nil {
		return err
	}
	d, err := s.Drafts.Get(ctx, rs.DraftID)
	if err != nil {
		return err
	}
	v := s.view(c, s.Now(), "")
	data := receiptData{R: rs, D: d, New: c.QueryParam("new") == "1"}
	data.Section = v.T("form.whole")
	if sec, ok := d.Section(rs.Section); ok {
		data.Section = sectionName(v.tr, sec)
	}
	v.Title, v.Page = v.T("receipt.title")+" "+rs.Code, data
	return s.render(c, http.StatusOK, "receipt", v)
}

type lookupData struct {
	Code     string
	NotFound bool
	Found    *comments.ReceiptStatus
	D        drafts.Draft
}

func (s *server) lookupPage(c echo.Context) error {
	ctx := c.Request().Context()
	v := s.view(c, s.Now(), "lookup")
	// The code is shown back as typed; a pasted essay is cut short.
	code := strings.TrimSpace(strings.ToValidUTF8(c.QueryParam("code"), ""))
	if r := []rune(code); len(r) > 64 {
		code = string(r[:64])
	}
	data := lookupData{Code: code}
	if code != "" {
		v.SwitchURL = "/receipts?" + url.Values{"code": {code}, "lang": {v.Lang.other().short()}}.Encode()
	}
	status := http.StatusOK
	if code != "" {
		rs, err := s.Comments.Lookup(ctx, code)
		switch {
		case errors.Is(err, comments.ErrNotFound):
			data.NotFound, status = true, http.StatusNotFound
		case err != nil:
			return err
		default:
			d, err := s.Drafts.Get(ctx, rs.DraftID)
			if err != nil {
				return err
			}
			data.Found, data.D = &rs, d
		}
	}
	v.Title, v.Page = v.T("lookup.title"), data
	return s.render(c, status, "lookup", v)
}

func (s *server) assets(c echo.Context) error {
	a, ok := s.pages.files[c.Param("*")]
	if !ok {
		return echo.ErrNotFound
	}
	// The name changes with the content, so a browser may keep it for good.
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, a.ContentType, a.Body)
}

type errorData struct {
	Heading, Text, Ref, BackForm string
}

// errorPage is the page for an error that is nobody's form to fix: handleError
// calls it with classify's status and code.
func (s *server) errorPage(c echo.Context, status int, code string) error {
	v := s.view(c, s.Now(), "")
	key := "error.bad_request"
	var args []any
	switch {
	case status == http.StatusNotFound && (code == "draft_not_found" || code == "receipt_not_found"):
		key = "error." + code
	case status == http.StatusNotFound:
		key = "error.not_found"
	case status == http.StatusForbidden:
		key = "error.csrf"
	case status == http.StatusRequestEntityTooLarge:
		key, args = "error.too_large", []any{comments.MaxBody}
	case status == http.StatusConflict:
		key = "error.conflict"
	case status == http.StatusServiceUnavailable:
		key = "error.unavailable"
	case status >= 500:
		key = "error.internal"
	}
	data := errorData{Heading: v.T(key), Text: v.T(key+".p", args...)}
	if status >= 500 {
		data.Ref = c.Response().Header().Get(echo.HeaderXRequestID)
	}
	// A form that could not be taken links back to itself, so the person can try again.
	path := c.Request().URL.Path
	if c.Request().Method == http.MethodPost && strings.HasPrefix(path, "/d/") && strings.HasSuffix(path, "/comment") {
		back := path
		if pf := c.Request().PostForm; pf != nil && pf.Get("section") != "" {
			back += "?section=" + url.QueryEscape(pf.Get("section"))
		}
		data.BackForm = back
	}
	v.Title, v.Page = data.Heading, data
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return s.render(c, status, "error", v)
}
