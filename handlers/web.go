package handlers

import (
	"bytes"
	"context"
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
	// paths are the route table's (set by Register): the templates' links.
	paths routePaths
}

var pageNames = []string{"list", "draft", "comment", "receipt", "lookup", "error", "thanks", "login", "account"}

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
		// path is the URL of a named route (routePaths): {{path "draft" .ID}}.
		// An unknown name, or a wrong number of parameters, fails the page.
		"path": func(name string, params ...any) (string, error) {
			ps := make([]string, len(params))
			for i, v := range params {
				ps[i] = fmt.Sprint(v)
			}
			return p.paths.path(name, ps...)
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
	// Staff is who is signed in, on staff pages only: citizens' pages never
	// look at the session, and look the same to everyone.
	Staff *staffNav
}

func (v view) HTMLLang() string  { return string(v.Lang) }
func (v view) OtherLang() string { return string(v.Lang.other()) }

func (s *server) view(c echo.Context, now time.Time, nav string) view {
	l := s.negotiate(c)
	u := *c.Request().URL
	q := u.Query()
	q.Set("lang", l.other().short())
	return view{tr: tr{Lang: l, zone: s.Location, now: now}, Nav: nav, SwitchURL: samePath(u.Path) + "?" + q.Encode()}
}

// samePath is a request's path as a link that stays on this site: the raw path
// of a request for //evil.example/x would make a link to another host, and
// browsers read a backslash as a slash.
func samePath(p string) string {
	return (&url.URL{Path: "/" + strings.TrimLeft(p, "/\\")}).EscapedPath()
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
	// PoW is the proof-of-work challenge the page's script solves, when the
	// draft asks for one.
	PoW *powForm
}

// powForm is a challenge on the form, with the texts the script shows.
type powForm struct {
	Challenge string
	Bits      int
	// Wait is shown when the person presses submit before the script is done;
	// Failed when the browser cannot run it.
	Wait, Failed string
}

// honeypotField is the form field people never see (CSS, aria-hidden, out of
// the tab order) and scripts that fill in every field do.
const honeypotField = "website"

// fieldMsg is one line of the error summary; ID is the element it links to.
type fieldMsg struct{ ID, Label, Msg string }

// Err is the message for one field, or "".
func (f formData) Err(field string) string { return f.Errors[field] }

func (s *server) newForm(c echo.Context, t tr, d drafts.Draft) formData {
	f := formData{D: d, CSRF: csrfToken(c), Categories: comments.Categories, Category: comments.CategoryIndividual,
		MaxBody: comments.MaxBody, MaxName: comments.MaxName, MaxContact: comments.MaxContact,
		CounterJS: t.T("form.counter_js", comments.MaxBody), CounterOver: t.T("form.counter_over")}
	if bits := d.Limits.PoWBits; bits > 0 {
		ch, _ := s.newChallenge(d.ID, bits)
		f.PoW = &powForm{Challenge: ch, Bits: bits, Wait: t.T("form.pow_wait"), Failed: t.T("form.pow_failed", d.Bureau)}
	}
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
	form, err := c.FormParams()
	if err != nil {
		return readError(err) // BodyLimit's 413 arrives here
	}
	d, err := s.Drafts.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		if !unavailable(err) {
			return err
		}
		// Storage is down and the draft not cached: the form comes back on a
		// stand-in that knows only the id, so that the text is not lost.
		d = standIn(c.Param("id"))
		return s.formAgain(c, d, formSubmission(d.ID, form), err)
	}
	sub := formSubmission(d.ID, form)
	if form.Get(honeypotField) != "" {
		// A field no person sees was filled in: a script. It is answered as if
		// its comment were taken, with a thank-you and no receipt, and nothing is
		// kept; the metric counts it.
		s.counts.honeypot.Add(1)
		v := s.view(c, s.Now(), "")
		v.Title, v.Page = v.T("thanks.title"), d
		return s.render(c, http.StatusOK, "thanks", v)
	}
	r, err := s.submit(c, d, sub, form.Get("pow_challenge"), form.Get("pow_nonce"))
	if err == nil {
		return c.Redirect(http.StatusSeeOther, s.paths.url(routeReceipt, r.Code)+"?new=1")
	}
	return s.formAgain(c, d, sub, err)
}

// standIn is the draft a form comes back on when storage is down and the draft
// is not cached: it knows only its id.
func standIn(id string) drafts.Draft { return drafts.Draft{ID: id, Title: id} }

// formSubmission reads a comment form.
func formSubmission(draftID string, form url.Values) comments.Submission {
	return comments.Submission{
		DraftID: draftID, Section: form.Get("section"), Body: form.Get("body"), Name: form.Get("name"),
		Contact: form.Get("contact"), Category: comments.Category(form.Get("category")),
		PublishName: form.Get("publish_name") != "", IdempotencyKey: form.Get("idempotency_key"),
	}
}

// formAgain renders the comment form that was not taken, with everything typed
// and the reason; it returns err itself when no form can say it.
func (s *server) formAgain(c echo.Context, d drafts.Draft, sub comments.Submission, err error) error {
	now := s.Now()
	v := s.view(c, now, "")
	q := url.Values{"lang": {v.Lang.other().short()}}
	if sub.Section != "" {
		q.Set("section", sub.Section)
	}
	v.SwitchURL = s.paths.url(routeComment, d.ID) + "?" + q.Encode()
	f := s.newForm(c, v.tr, d)
	f.setSection(v.tr, sub.Section) // an unknown one falls back to the whole draft, and says so
	f.Body, f.Name, f.Contact = strings.ToValidUTF8(sub.Body, "\uFFFD"), strings.ToValidUTF8(sub.Name, "\uFFFD"), strings.ToValidUTF8(sub.Contact, "\uFFFD")
	f.Category, f.Publish, f.IdempotencyKey = sub.Category, sub.PublishName, sub.IdempotencyKey
	if f.IdempotencyKey == "" {
		f.IdempotencyKey = newIdempotencyKey()
	}
	f.ShowForm, f.CanSubmit = true, true
	status := http.StatusConflict
	var (
		ve  *comments.ValidationError
		rle *rateLimitError
		pe  *proofError
		be  *bodyError
	)
	switch {
	case errors.As(err, &ve):
		status = http.StatusUnprocessableEntity
		f.Errors = fieldMessages(v.tr, ve.Fields)
		f.ErrorList = errorList(v.tr, f.Errors)
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
	case errors.Is(err, comments.ErrDraftFull):
		s.Logger.Warn("draft full", "id", c.Response().Header().Get(echo.HeaderXRequestID), "draft", d.ID)
		status, f.Notice, f.CanSubmit = http.StatusServiceUnavailable, v.T("form.draft_full", d.Bureau), false
	case errors.As(err, &rle):
		c.Response().Header().Set("Retry-After", retryAfter(rle.wait))
		status, f.Notice = http.StatusTooManyRequests, v.T("form.rate_limited", v.span(rle.wait+time.Minute))
	case errors.As(err, &pe):
		status, f.Notice = http.StatusPreconditionRequired, v.T("form.proof_stale")
		if pe.reason == "missing" {
			f.Notice = v.T("form.proof_missing", d.Bureau)
		}
	case errors.As(err, &be):
		status, _, _ = classify(err)
		f.Notice = v.T("form.body_incomplete")
		if be.timeout {
			f.Notice = v.T("form.body_timeout")
		}
	default:
		st, _, _ := classify(err)
		if st != http.StatusServiceUnavailable {
			return err
		}
		// Storage is down: no receipt, but the text stays on the page to send again.
		s.Logger.Warn("storage unavailable", "id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Path(), "err", err)
		c.Response().Header().Set("Retry-After", "5")
		status, f.Notice = st, v.T("form.unavailable")
	}
	f.BodyCount = runeCount(f.Body)
	v.Title, v.Page = v.T("form.title")+" - "+d.Title, f
	return s.render(c, status, "comment", v)
}

// bodyFormAgain is the comment form after a body that broke off: what arrived is
// kept. The request's context is gone with the connection's read, so the draft is
// read on a context of its own.
func (s *server) bodyFormAgain(c echo.Context, be *bodyError) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.RequestTimeout)
	defer cancel()
	d, err := s.Drafts.Get(ctx, c.Param("id"))
	if err != nil {
		if !unavailable(err) {
			return err
		}
		d = standIn(c.Param("id"))
	}
	return s.formAgain(c, d, formSubmission(d.ID, be.form), be)
}

// parseForm parses a urlencoded body; on an error it returns what parsed.
func parseForm(body string) (url.Values, error) {
	return url.ParseQuery(body)
}

// partialForm parses a form body that broke off: every whole field, and the
// last one as far as it came (an escape or a character cut in two is dropped),
// so that the page can give back what the person typed.
func partialForm(body string) url.Values {
	form := url.Values{}
	for pair := range strings.SplitSeq(body, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		val, err := url.QueryUnescape(v)
		for cut := 1; err != nil && cut <= 2 && cut <= len(v); cut++ {
			val, err = url.QueryUnescape(v[:len(v)-cut])
		}
		if err != nil {
			continue
		}
		for i := 0; i < utf8.UTFMax && !utf8.ValidString(val); i++ {
			if r, size := utf8.DecodeLastRuneInString(val); r != utf8.RuneError || size != 1 {
				break
			}
			val = val[:len(val)-1]
		}
		form.Add(key, val)
	}
	return form
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

// errorList is the error summary: the fields' messages in the order of the
// form, then any other field's, by name.
func errorList(t tr, msgs map[string]string) []fieldMsg {
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
	return list
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
	tok, ok := c.Get("csrf").(string)
	if tok == middleware.CSRFUsingSecFetchSite {
		return ""
	}
	if !ok {
		// The CSRF check did not run (a form whose body broke off): the cookie's
		// token is the one the browser holds.
		if ck, err := c.Cookie("consult_csrf"); err == nil {
			return ck.Value
		}
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
	if err := s.allowLookup(c); err != nil {
		return s.lookupFailed(c, c.Param("code"), err)
	}
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
	Notice   string // why there is no answer, when not a wrong code
}

func (s *server) lookupPage(c echo.Context) error {
	ctx := c.Request().Context()
	v := s.view(c, s.Now(), "lookup")
	code := typedCode(c.QueryParam("code"))
	data := lookupData{Code: code}
	if code != "" {
		v.SwitchURL = s.paths.url(routeLookup) + "?" + url.Values{"code": {code}, "lang": {v.Lang.other().short()}}.Encode()
	}
	status := http.StatusOK
	if code != "" {
		if err := s.allowLookup(c); err != nil {
			return s.lookupFailed(c, code, err)
		}
		rs, err := s.Comments.Lookup(ctx, code)
		switch {
		case errors.Is(err, comments.ErrNotFound):
			data.NotFound, status = true, http.StatusNotFound
		case err != nil:
			return s.lookupFailed(c, code, err)
		default:
			d, err := s.Drafts.Get(ctx, rs.DraftID)
			if err != nil {
				return s.lookupFailed(c, code, err)
			}
			data.Found, data.D = &rs, d
		}
	}
	v.Title, v.Page = v.T("lookup.title"), data
	return s.render(c, status, "lookup", v)
}

// typedCode is a receipt code as the page shows it back: as typed, but a pasted
// essay cut short.
func typedCode(v string) string {
	code := strings.TrimSpace(strings.ToValidUTF8(v, ""))
	if r := []rune(code); len(r) > 64 {
		code = string(r[:64])
	}
	return code
}

// lookupFailed is the look-up page when a look-up could not be made: for a
// client over its limit (429) or with storage down (503), with the code kept in
// the field. Other errors are returned as they are.
func (s *server) lookupFailed(c echo.Context, code string, err error) error {
	v := s.view(c, s.Now(), "lookup")
	data := lookupData{Code: typedCode(code)}
	var rle *rateLimitError
	status := http.StatusTooManyRequests
	switch {
	case errors.As(err, &rle):
		c.Response().Header().Set("Retry-After", retryAfter(rle.wait))
		data.Notice = v.T("lookup.rate_limited", v.span(rle.wait+time.Minute))
	case unavailable(err):
		s.Logger.Warn("storage unavailable", "id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Path(), "err", err)
		c.Response().Header().Set("Retry-After", "5")
		status, data.Notice = http.StatusServiceUnavailable, v.T("lookup.unavailable")
	default:
		return err
	}
	v.SwitchURL = s.paths.url(routeLookup) + "?" + url.Values{"code": {data.Code}, "lang": {v.Lang.other().short()}}.Encode()
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
	if status == http.StatusUnauthorized {
		// A staff page without a live session: sign in, then come back here.
		s.clearSession(c)
		return s.loginAgain(c, status, "", s.view(c, s.Now(), "").T("login.required"))
	}
	v := s.view(c, s.Now(), "")
	if _, ok := principalOf(c); ok {
		v = s.staffView(c)
	}
	key := "error.bad_request"
	var args []any
	switch {
	case status == http.StatusNotFound && (code == "draft_not_found" || code == "receipt_not_found"):
		key = "error." + code
	case status == http.StatusNotFound:
		key = "error.not_found"
	case status == http.StatusForbidden && code == "csrf":
		key = "error.csrf"
	case status == http.StatusForbidden:
		key = "error.forbidden"
	case status == http.StatusRequestEntityTooLarge:
		key, args = "error.too_large", []any{comments.MaxBody}
	case status == http.StatusRequestTimeout, code == "incomplete_body":
		key = "error.incomplete"
	case status == http.StatusTooManyRequests:
		key = "error.rate_limited"
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
	if c.Request().Method == http.MethodPost && c.Path() == commentPath {
		back := samePath(c.Request().URL.Path)
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
