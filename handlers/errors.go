package handlers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
)

// Errors of the web layer itself; domain errors come from the domain packages.
var (
	errUnauthorized = errors.New("handlers: missing or wrong Bearer token")
	errCSRF         = errors.New("handlers: form token missing or wrong")
	errBadJSON      = errors.New("handlers: malformed JSON")
	errBadUTF8      = errors.New("handlers: body is not valid UTF-8")
	errBadQuery     = errors.New("handlers: bad query parameter")
	errMediaType    = errors.New("handlers: the API takes a body as application/json only")
)

// bodyError is a request body that did not arrive whole or in time: the
// client's (or its network's) doing, never the storage's, so it is answered
// 400 or 408 and never logged as an outage.
type bodyError struct {
	err error
	// timeout: the server's read deadline passed while the body was read (408);
	// else the body ended before its length (400).
	timeout bool
	// malformed: a form whose encoding is broken (400).
	malformed bool
	// form is what arrived of a form, so that the page can keep what was typed.
	form url.Values
}

func (e *bodyError) Error() string { return "handlers: request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// readError classifies an error met while reading a request body. BodyLimit's
// 413 passes through; anything else is the client's or its network's.
func readError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return err
	}
	var ne net.Error
	return &bodyError{err: err, timeout: errors.As(err, &ne) && ne.Timeout()}
}

// rateLimitError is a request refused by a per-client limit.
type rateLimitError struct{ wait time.Duration }

func (e *rateLimitError) Error() string {
	return "handlers: rate limited for " + e.wait.Round(time.Second).String()
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// fieldError is a request that decoded but has a field of the wrong type: a
// catalogue key and its arguments, as the domain packages' validation errors.
type fieldError struct {
	Field, Key string
	Args       []any
}

func (e *fieldError) Error() string { return "handlers: " + e.Field + ": " + e.Key }

// message is a catalogue key with its arguments: what every domain package's
// validation error holds for a field (comments.FieldError, drafts.FieldError,
// accounts.Problem), so that one function translates them all.
type message = struct {
	Key  string
	Args []any
}

// fieldProblem is any of the domain packages' field errors: each is a message.
type fieldProblem interface{ ~message }

// fieldMessages translates a validation error's fields into t's language.
func fieldMessages[F fieldProblem](t tr, fields map[string]F) map[string]string {
	out := make(map[string]string, len(fields))
	for f, p := range fields {
		m := message(p)
		out[f] = t.T(m.Key, m.Args...)
	}
	return out
}

// apiLang is the API's language: its problem documents say in English what
// the pages say in the person's.
var apiLang = tr{Lang: langEN}

// statusClientClosed is nginx's convention for a request whose client hung up.
const statusClientClosed = 499

// problem is an RFC 9457 problem detail with a machine-readable code.
type problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Code   string            `json:"code"`
	Detail string            `json:"detail,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
	// RequestID lets an operator find the log line.
	RequestID string `json:"request_id,omitempty"`
	// Proof is a fresh challenge, with proof_required.
	Proof *proofJSON `json:"proof,omitempty"`
}

// classify maps an error to a status, a code and per-field messages. It is the one
// place that knows which error means what on the wire.
func classify(err error) (status int, code string, fields map[string]string) {
	var (
		dve *drafts.ValidationError
		cve *comments.ValidationError
		fe  *fieldError
		he  *echo.HTTPError
		be  *bodyError
		rle *rateLimitError
		pe  *proofError
		ave *accounts.ValidationError
		le  *accounts.LockedError
	)
	switch {
	// First: a broken body also cancels the request's context.
	case errors.As(err, &be):
		switch {
		case be.timeout:
			return http.StatusRequestTimeout, "body_timeout", nil
		case be.malformed:
			return http.StatusBadRequest, "malformed_form", nil
		}
		return http.StatusBadRequest, "incomplete_body", nil
	case errors.As(err, &rle):
		return http.StatusTooManyRequests, "rate_limited", nil
	case errors.As(err, &pe):
		return http.StatusPreconditionRequired, "proof_required", nil
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, "unsupported_media_type", nil
	case errors.Is(err, comments.ErrDraftFull):
		// Not an outage, and no retry will help: the draft holds all it may.
		return http.StatusServiceUnavailable, "draft_full", nil
	// The API speaks English; the pages translate the same keys themselves.
	case errors.As(err, &cve):
		return http.StatusUnprocessableEntity, "invalid", fieldMessages(apiLang, cve.Fields)
	case errors.As(err, &dve):
		return http.StatusUnprocessableEntity, "invalid", fieldMessages(apiLang, dve.Fields)
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, "invalid", map[string]string{fe.Field: apiLang.T(fe.Key, fe.Args...)}
	case errors.As(err, &ave):
		return http.StatusUnprocessableEntity, "invalid", fieldMessages(apiLang, ave.Fields)
	case errors.As(err, &le):
		return http.StatusTooManyRequests, "login_locked", nil
	case errors.Is(err, accounts.ErrUnauthenticated), errors.Is(err, accounts.ErrBadCredentials):
		return http.StatusUnauthorized, "unauthorized", nil
	case errors.Is(err, accounts.ErrForbidden):
		return http.StatusForbidden, "forbidden", nil
	case errors.Is(err, accounts.ErrDisabled):
		return http.StatusConflict, "user_disabled", nil
	case errors.Is(err, accounts.ErrExists):
		return http.StatusConflict, "name_taken", nil
	case errors.Is(err, accounts.ErrNotFound):
		return http.StatusNotFound, "not_found", nil
	case errors.Is(err, errBadJSON):
		return http.StatusBadRequest, "malformed_json", nil
	case errors.Is(err, errBadUTF8):
		return http.StatusBadRequest, "invalid_utf8", nil
	case errors.Is(err, errBadQuery), errors.Is(err, comments.ErrBadCursor):
		return http.StatusBadRequest, "bad_query", nil
	case errors.Is(err, comments.ErrIdempotencyMismatch):
		return http.StatusUnprocessableEntity, "idempotency_key_reused", nil
	case errors.Is(err, drafts.ErrNotFound):
		return http.StatusNotFound, "draft_not_found", nil
	case errors.Is(err, comments.ErrNotFound):
		return http.StatusNotFound, "receipt_not_found", nil
	case errors.Is(err, drafts.ErrExists):
		return http.StatusConflict, "id_taken", nil
	case errors.Is(err, comments.ErrWindowClosed):
		return http.StatusConflict, "window_closed", nil
	case errors.Is(err, comments.ErrWindowNotOpen):
		return http.StatusConflict, "window_not_open", nil
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, "unauthorized", nil
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, "csrf", nil
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusRequestEntityTooLarge:
			return he.Code, "too_large", nil
		case http.StatusNotFound:
			return he.Code, "not_found", nil
		case http.StatusMethodNotAllowed:
			return he.Code, "method_not_allowed", nil
		case http.StatusForbidden:
			// The CSRF check's own refusal of a cross-site POST (Sec-Fetch-Site).
			return he.Code, "csrf", nil
		}
		if he.Code < 500 {
			return he.Code, "bad_request", nil
		}
	case errors.Is(err, context.Canceled):
		// The client went away before the answer: nothing to tell it, nothing to log.
		return statusClientClosed, "client_closed", nil
	case unavailable(err):
		return http.StatusServiceUnavailable, "unavailable", nil
	}
	return http.StatusInternalServerError, "internal", nil
}

// unavailable tells a storage outage from a bug by behaviour, without the web
// layer knowing the Redis client: the store marks its outages (Redis down,
// unreachable, loading, out of memory; the intake shutting down), and a storage
// call that outlived the request's own deadline (Config.RequestTimeout) is one.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable() || errors.Is(err, context.DeadlineExceeded)
}

var titles = map[int]string{
	400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
	408: "Request timeout", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
	422: "Invalid request", 428: "Proof of work required", 429: "Too many requests", 500: "Internal error",
	503: "Service unavailable",
}

// handleError is echo's HTTPErrorHandler: problem+json for the API and operators,
// a page for people. Only errors it doesn't recognise are logged, with the request id.
func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, fields := classify(err)
	if status == statusClientClosed {
		c.Response().WriteHeader(status)
		return
	}
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	switch status {
	case http.StatusInternalServerError:
		s.Logger.Error("request failed", "id", rid, "method", c.Request().Method, "path", c.Path(), "err", err)
	case http.StatusServiceUnavailable:
		// A flood or an outage answers thousands of these a second: count each,
		// log one a second with how many went unlogged.
		s.counts.unavailable.Add(1)
		if n, ok := s.warnEvery.allow(time.Now()); ok {
			if code == "draft_full" {
				s.Logger.Warn("draft full", "id", rid, "draft", c.Param("id"), "unlogged_since_last", n)
			} else {
				s.Logger.Warn("storage unavailable", "id", rid, "path", c.Path(), "err", err, "unlogged_since_last", n)
			}
		}
	}
	var rle *rateLimitError
	switch {
	case code == "unavailable":
		c.Response().Header().Set("Retry-After", "5")
	case errors.As(err, &rle):
		c.Response().Header().Set("Retry-After", retryAfter(rle.wait))
	case errors.As(err, new(*accounts.LockedError)):
		var le *accounts.LockedError
		errors.As(err, &le)
		c.Response().Header().Set("Retry-After", retryAfter(le.Until.Sub(s.Now())))
	case status == http.StatusUnauthorized && strings.HasPrefix(c.Request().URL.Path, apiRoot):
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="consult"`)
	}
	if strings.HasPrefix(c.Request().URL.Path, apiRoot) || c.Request().URL.Path == s.paths.url(routeReadyz) {
		p := problem{Type: "about:blank", Title: titles[status], Status: status, Code: code, Errors: fields, RequestID: rid}
		if status < 500 {
			p.Detail = detail(err)
		}
		var pe *proofError
		if errors.As(err, &pe) {
			p.Proof = s.challengeJSON(pe)
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(status)
		_ = jsonEncoder(c.Response()).Encode(p)
		return
	}
	// A comment whose body broke off comes back as the form, with what arrived.
	var be *bodyError
	if errors.As(err, &be) && c.Request().Method == http.MethodPost && c.Path() == commentPath {
		rerr := s.bodyFormAgain(c, be)
		if rerr == nil {
			return
		}
		s.Logger.Warn("form after a broken body", "id", rid, "err", rerr)
	}
	if rerr := s.errorPage(c, status, code); rerr != nil {
		s.Logger.Error("error page failed", "id", rid, "err", rerr)
		_ = c.String(status, http.StatusText(status))
	}
}

// detail is the human-readable part of a client error: the message without the
// package prefixes.
func detail(err error) string {
	var (
		he  *echo.HTTPError
		pe  *proofError
		be  *bodyError
		rle *rateLimitError
	)
	switch {
	case errors.As(err, &he):
		return strings.TrimSpace(strings.TrimPrefix(http.StatusText(he.Code), "handlers:"))
	case errors.As(err, &pe):
		return proofDetails[pe.reason]
	case errors.As(err, &be):
		switch {
		case be.timeout:
			return "the request body did not arrive within the server's read timeout"
		case be.malformed:
			return "the form's encoding is broken"
		}
		return "the request body ended before its declared length"
	case errors.As(err, &rle):
		return "too many requests from this client: retry after " + retryAfter(rle.wait) + " seconds"
	case errors.Is(err, errMediaType):
		return "send the body as Content-Type: application/json"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && !strings.Contains(msg, "invalid") {
		msg = msg[i+2:]
	}
	for _, p := range []string{"handlers: ", "store: ", "comments: ", "drafts: ", "accounts: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// logThrottle lets one line through per interval, and counts the others.
type logThrottle struct {
	last    atomic.Int64 // unix nanoseconds of the last line let through
	dropped atomic.Int64
}

// allow reports whether a line may be written now, and how many were not
// since the last one that was.
func (l *logThrottle) allow(now time.Time) (int64, bool) {
	last := l.last.Load()
	if now.UnixNano()-last < int64(time.Second) || !l.last.CompareAndSwap(last, now.UnixNano()) {
		l.dropped.Add(1)
		return 0, false
	}
	return l.dropped.Swap(0), true
}
