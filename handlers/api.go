package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
	"consult/record"
)

// draftJSON is a draft as the public API shows it: no digest recipients.
type draftJSON struct {
	ID              string           `json:"id"`
	Title           string           `json:"title"`
	Bureau          string           `json:"bureau"`
	Kind            drafts.Kind      `json:"kind"`
	Summary         string           `json:"summary"`
	OpensAt         time.Time        `json:"opens_at"`
	ClosesAt        time.Time        `json:"closes_at"`
	ShortenedReason string           `json:"shortened_reason,omitempty"`
	Status          drafts.Status    `json:"status"`
	CommentCount    int64            `json:"comment_count"`
	Text            string           `json:"text,omitempty"`
	Sections        []drafts.Section `json:"sections,omitempty"`
}

func (s *server) draftView(d drafts.Draft, count int64, full bool) draftJSON {
	v := draftJSON{ID: d.ID, Title: d.Title, Bureau: d.Bureau, Kind: d.Kind, Summary: d.Summary,
		OpensAt: d.OpensAt, ClosesAt: d.ClosesAt, ShortenedReason: d.ShortenedReason,
		Status: d.StatusAt(s.Now()), CommentCount: count}
	if full {
		v.Text, v.Sections = d.Text, d.Sections
	}
	return v
}

// readJSON decodes a request body strictly: valid UTF-8 (the decoder would silently
// replace bad bytes), no unknown fields, one value, and field types named on error.
func readJSON(c echo.Context, dst any) error {
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			bodyBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(c.Request().Body); err != nil {
		return readError(err) // BodyLimit's 413, or a body cut short or too slow
	}
	body := buf.Bytes()
	if !utf8.Valid(body) {
		return errBadUTF8
	}
	// json v2 (the go-json-experiment prototype of encoding/json/v2): one pass
	// instead of encoding/json's two, a third of the intake's decoding time, and
	// strict about unknown and duplicate members.
	if err := jsonv2.Unmarshal(body, dst, jsonv2.RejectUnknownMembers(true)); err != nil {
		var se *jsonv2.SemanticError
		if errors.As(err, &se) {
			field := strings.TrimPrefix(string(se.JSONPointer), "/")
			if field == "" {
				field = "(body)"
			}
			switch {
			case errors.Is(se.Err, jsonv2.ErrUnknownName):
				return &fieldError{Field: field, Key: "err.json.unknown"}
			case se.GoType == reflect.TypeFor[time.Time]():
				return &fieldError{Field: field, Key: "err.json.time"}
			case se.GoType != nil:
				return &fieldError{Field: field, Key: "err.json.type", Args: []any{jsonType(se.GoType.Kind().String())}}
			}
		}
		return fmt.Errorf("%w: %v", errBadJSON, err)
	}
	return nil
}

// bodyBufs holds request-body buffers: the decoder copies what it keeps, so a
// buffer is free again once a request is decoded.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func jsonType(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	case "string":
		return "string"
	}
	return "number"
}

func (s *server) apiCreateDraft(c echo.Context) error {
	var in struct {
		ID               string      `json:"id"`
		Title            string      `json:"title"`
		Bureau           string      `json:"bureau"`
		Kind             drafts.Kind `json:"kind"`
		Summary          string      `json:"summary"`
		Text             string      `json:"text"`
		OpensAt          time.Time   `json:"opens_at"`
		ClosesAt         time.Time   `json:"closes_at"`
		DigestRecipients []string    `json:"digest_recipients"`
		ShortenedReason  string      `json:"shortened_reason"`
	}
	if err := readJSON(c, &in); err != nil {
		return err
	}
	d := drafts.Draft{ID: in.ID, Title: in.Title, Bureau: in.Bureau, Kind: in.Kind,
		Summary: in.Summary, Text: in.Text, OpensAt: in.OpensAt, ClosesAt: in.ClosesAt,
		DigestRecipients: in.DigestRecipients, ShortenedReason: in.ShortenedReason}
	if err := d.Validate(); err != nil {
		return err
	}
	// The draft names its bureau in free text. A bureau user may publish only
	// for a bureau of its own; an admin for any, and a bureau named for the
	// first time gets its record now.
	ctx := c.Request().Context()
	p, _ := principalOf(c)
	b, err := s.bureauID(ctx, d.Bureau)
	if err != nil {
		return err
	}
	if !p.May(accounts.CreateDraft, b) {
		return accounts.ErrForbidden
	}
	if b == "" {
		if _, err := s.Accounts.EnsureBureau(ctx, p.Actor, d.Bureau); err != nil {
			return err
		}
	}
	actor, err := actorOf(c)
	if err != nil {
		return err
	}
	// A zero opens_at (left out) publishes now; so does one a little past. The
	// answer carries the opening and the creation as the Redis server stamped them.
	d, err = s.Drafts.Create(ctx, actor, d)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, s.paths.url(routeAPIDraft, d.ID))
	// The bureau that created it sees its own recipients.
	return c.JSON(http.StatusCreated, struct {
		draftJSON
		DigestRecipients []string  `json:"digest_recipients"`
		Ref              int64     `json:"ref"`
		CreatedAt        time.Time `json:"created_at"`
	}{s.draftView(d, 0, true), d.DigestRecipients, d.Ref, d.CreatedAt})
}

func (s *server) apiListDrafts(c echo.Context) error {
	var statuses []drafts.Status
	switch st := c.QueryParam("status"); st {
	case "", "all":
	case "open", "upcoming", "closed":
		statuses = []drafts.Status{drafts.Status(st)}
	default:
		return fmt.Errorf("%w: status must be open, upcoming, closed or all", errBadQuery)
	}
	ctx := c.Request().Context()
	ds, err := s.Drafts.List(ctx, s.Now(), statuses...)
	if err != nil {
		return err
	}
	out := make([]draftJSON, 0, len(ds))
	for _, d := range ds {
		n, err := s.Comments.Counts(ctx, d.ID)
		if err != nil {
			return err
		}
		out = append(out, s.draftView(d, n.Submitted, false))
	}
	return c.JSON(http.StatusOK, map[string]any{"drafts": out})
}

func (s *server) apiGetDraft(c echo.Context) error {
	d, n, err := s.draftAndCount(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.draftView(d, n, true))
}

func (s *server) apiSubmitComment(c echo.Context) error {
	var in struct {
		Section     string            `json:"section"`
		Body        string            `json:"body"`
		Name        string            `json:"name"`
		Contact     string            `json:"contact"`
		Category    comments.Category `json:"category"`
		PublishName bool              `json:"publish_name"`
		// Proof is the solved challenge, on a draft that asks for a proof of work.
		Proof struct {
			Challenge string `json:"challenge"`
			Nonce     string `json:"nonce"`
		} `json:"proof"`
	}
	if err := readJSON(c, &in); err != nil {
		return err
	}
	d, err := s.Drafts.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	r, err := s.submit(c, d, comments.Submission{
		DraftID: d.ID, Section: in.Section, Body: in.Body, Name: in.Name, Contact: in.Contact,
		Category: in.Category, PublishName: in.PublishName, IdempotencyKey: c.Request().Header.Get("Idempotency-Key"),
	}, in.Proof.Challenge, in.Proof.Nonce)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusAccepted, appendReceipt(make([]byte, 0, 256), r))
}

// submit takes one comment in, for the API and the form alike: the proof of
// work when the draft asks for one (checked first: it costs one hash), the
// client's rate limit, the proof's single use, then the intake. The client's
// keyed hash goes with the comment, for the store's duplicate flags.
func (s *server) submit(c echo.Context, d drafts.Draft, sub comments.Submission, challenge, nonce string) (comments.Receipt, error) {
	ctx := c.Request().Context()
	sub.Client = s.clientID(c)
	var p proof
	if bits := d.Limits.PoWBits; bits > 0 {
		var err error
		if p, err = s.checkProof(d.ID, bits, challenge, nonce); err != nil {
			s.counts.proofsRefused.Add(1)
			return comments.Receipt{}, err
		}
	}
	if s.Limiter != nil {
		wait, err := s.Limiter.AllowComment(ctx, d.ID, sub.Client, d.Limits.SubmitsPerHour)
		if err != nil {
			return comments.Receipt{}, err
		}
		if wait > 0 {
			s.counts.limitedComments.Add(1)
			return comments.Receipt{}, &rateLimitError{wait: wait}
		}
	}
	if p.id != "" && s.Proofs != nil {
		fresh, err := s.Proofs.Spend(ctx, d.ID, p.id, p.expires)
		if err != nil {
			return comments.Receipt{}, err
		}
		if !fresh {
			s.counts.proofsRefused.Add(1)
			return comments.Receipt{}, errProofUsed(d.ID, d.Limits.PoWBits)
		}
	}
	return s.Comments.Submit(ctx, sub)
}

// allowLookup counts one receipt look-up against the client's limit.
func (s *server) allowLookup(c echo.Context) error {
	if s.Limiter == nil {
		return nil
	}
	wait, err := s.Limiter.AllowLookup(c.Request().Context(), s.clientID(c))
	if err != nil {
		return err
	}
	if wait > 0 {
		s.counts.limitedLookups.Add(1)
		return &rateLimitError{wait: wait}
	}
	return nil
}

// appendReceipt writes {"receipt":{...}} without reflection: the intake answers
// with it on every request, and encoding/json was a tenth of the intake's CPU. The
// test compares it with encoding/json's output.
func appendReceipt(b []byte, r comments.Receipt) []byte {
	b = append(b, `{"receipt":{"code":`...)
	b = appendJSONString(b, r.Code)
	b = append(b, `,"draft_id":`...)
	b = appendJSONString(b, r.DraftID)
	b = append(b, `,"section":`...)
	b = appendJSONString(b, r.Section)
	b = append(b, `,"received_at":"`...)
	b = r.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","sha256":`...)
	b = appendJSONString(b, r.SHA256)
	return append(b, "}}\n"...)
}

// appendJSONString quotes s as encoding/json does (with its HTML escaping).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func (s *server) apiGetReceipt(c echo.Context) error {
	if err := s.allowLookup(c); err != nil {
		return err
	}
	r, err := s.Comments.Lookup(c.Request().Context(), c.Param("code"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// apiListComments pages through every comment in the order received, contacts
// included (admin only). The cursor is opaque to clients: pass back "next".
func (s *server) apiListComments(c echo.Context) error {
	limit := int64(100)
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%w: limit must be 1 to 1000", errBadQuery)
		}
		limit = n
	}
	ctx := c.Request().Context()
	d, err := s.Drafts.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	cs, next, err := s.Comments.Page(ctx, d.ID, c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	out := map[string]any{"comments": cs}
	if next != "" {
		out["next"] = next
	}
	return c.JSON(http.StatusOK, out)
}

func (s *server) apiRequestDigest(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.Drafts.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	job, err := s.Digests.RequestInterim(ctx, d.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"draft_id": d.ID, "job": job, "status": "queued"})
}

// apiSetLimits replaces a draft's limits (a bureau tightens them under attack,
// or asks for a proof of work). Every replica applies them within 30 seconds.
func (s *server) apiSetLimits(c echo.Context) error {
	var in drafts.Limits
	if err := readJSON(c, &in); err != nil {
		return err
	}
	actor, err := actorOf(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.Drafts.SetLimits(c.Request().Context(), actor, id, in); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"draft_id": id, "limits": in})
}

// eventJSON is one event of a record as staff read it: its fields, and the
// stored bytes themselves with their SHA-256, so that a reviewer can check the
// hash without decoding anything.
type eventJSON struct {
	Seq    int64         `json:"seq"`
	At     time.Time     `json:"at"`
	Actor  record.Actor  `json:"actor"`
	Action record.Action `json:"action"`
	Data   record.Data   `json:"data"`
	// Intake is the draft's last comment (intake stream entry) before the
	// event; the staff record has none.
	Intake    string `json:"intake,omitempty"`
	SHA256    string `json:"sha256"`
	Canonical string `json:"canonical"`
}

// apiListEvents pages through a consultation's record (see pageOfRecord).
func (s *server) apiListEvents(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.Drafts.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	return s.pageOfRecord(c, record.DraftScope(d.ID), map[string]any{"draft_id": d.ID})
}

// pageOfRecord answers with a page of scope's record, oldest first, in res
// beside "events": after is the last sequence number the client has (0 or
// absent: from the start), and "next", present while more follow, is the one
// to pass back.
func (s *server) pageOfRecord(c echo.Context, scope record.Scope, res map[string]any) error {
	after, limit := int64(0), int64(100)
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: after must be a sequence number (0 or more)", errBadQuery)
		}
		after = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%w: limit must be 1 to 1000", errBadQuery)
		}
		limit = n
	}
	es, next, err := s.Records.Page(c.Request().Context(), scope, after, limit)
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(es))
	for i, e := range es {
		b, err := e.Encode()
		if err != nil {
			return err
		}
		h, _ := e.Hash()
		out[i] = eventJSON{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Data: e.Data,
			Intake: e.Intake, SHA256: h, Canonical: string(b)}
	}
	res["events"] = out
	if next != 0 {
		res["next"] = next
	}
	return c.JSON(http.StatusOK, res)
}

func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers within readyTimeout whatever Redis does: a check that has not
// answered by then is "unavailable" (it goes on, alone, until the client's own
// timeouts end it; see readinessProbe).
func (s *server) readyz(c echo.Context) error {
	if s.Ready == nil {
		return c.JSON(http.StatusOK, map[string]any{"status": "ready", "warnings": []string{}})
	}
	run := s.probe.start(s.Ready)
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	var (
		warnings []string
		err      error
	)
	select {
	case <-run.done:
		warnings, err = run.warnings, run.err
	case <-t.C:
		err = context.DeadlineExceeded
	}
	if err != nil {
		c.Response().Header().Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "redis unreachable", "warnings": warnings})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "warnings": nonNil(warnings)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *server) metrics(c echo.Context) error {
	var b bytes.Buffer
	ms := []Metric{
		{Name: "consult_unavailable_total", Help: "Requests answered 503: storage down, slow or full, the intake's queue full, or a draft at its cap.", Type: "counter", Value: float64(s.counts.unavailable.Load())},
		{Name: "consult_honeypot_total", Help: "Comment forms refused for a filled honeypot field (answered as if taken).", Type: "counter", Value: float64(s.counts.honeypot.Load())},
		{Name: "consult_rate_limited_comments_total", Help: "Comments refused by a per-client rate limit (429).", Type: "counter", Value: float64(s.counts.limitedComments.Load())},
		{Name: "consult_rate_limited_lookups_total", Help: "Receipt look-ups refused by a per-client rate limit (429).", Type: "counter", Value: float64(s.counts.limitedLookups.Load())},
		{Name: "consult_proofs_refused_total", Help: "Comments refused for a missing, wrong, expired or reused proof of work.", Type: "counter", Value: float64(s.counts.proofsRefused.Load())},
	}
	if s.Metrics != nil {
		ms = append(s.Metrics(c.Request().Context()), ms...)
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.Name, m.Help, m.Name, m.Type, m.Name,
			strconv.FormatFloat(m.Value, 'g', -1, 64))
	}
	return c.Blob(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", b.Bytes())
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc
}
