package handlers

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"

	"consult/comments"
	"consult/drafts"
)

// Errors of the web layer itself; domain errors come from the domain packages.
var (
	errUnauthorized = errors.New("handlers: missing or wrong admin token")
	errCSRF         = errors.New("handlers: form token missing or wrong")
	errBadJSON      = errors.New("handlers: malformed JSON")
	errBadUTF8      = errors.New("handlers: body is not valid UTF-8")
	errBadQuery     = errors.New("handlers: bad query parameter")
)

// fieldError is a request that decoded but has a field of the wrong type.
type fieldError struct{ Field, Msg string }

func (e *fieldError) Error() string { return "handlers: " + e.Field + ": " + e.Msg }

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
}

// classify maps an error to a status, a code and per-field messages. It is the one
// place that knows which error means what on the wire.
func classify(err error) (status int, code string, fields map[string]string) {
	var (
		dve *drafts.ValidationError
		cve *comments.ValidationError
		fe  *fieldError
		he  *echo.HTTPError
	)
	switch {
	case errors.As(err, &cve):
		return http.StatusUnprocessableEntity, "invalid", cve.Fields
	case errors.As(err, &dve):
		return http.StatusUnprocessableEntity, "invalid", dve.Fields
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, "invalid", map[string]string{fe.Field: fe.Msg}
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

// unavailable tells a storage outage (Redis down or unreachable) from a bug, without
// the web layer knowing the Redis client: both surface as network errors.
func unavailable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection pool timeout") || strings.Contains(err.Error(), "LOADING")
}

var titles = map[int]string{
	400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
	409: "Conflict", 413: "Request too large", 422: "Invalid request", 500: "Internal error", 503: "Service unavailable",
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
		s.Logger.Warn("storage unavailable", "id", rid, "path", c.Path(), "err", err)
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="consult"`)
	}
	if strings.HasPrefix(c.Request().URL.Path, "/api/") || c.Request().URL.Path == "/readyz" {
		p := problem{Type: "about:blank", Title: titles[status], Status: status, Code: code, Errors: fields, RequestID: rid}
		if status < 500 {
			p.Detail = detail(err)
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(status)
		_ = jsonEncoder(c.Response()).Encode(p)
		return
	}
	if rerr := s.errorPage(c, status, code); rerr != nil {
		s.Logger.Error("error page failed", "id", rid, "err", rerr)
		_ = c.String(status, http.StatusText(status))
	}
}

// detail is the human-readable part of a client error: the message without the
// package prefixes.
func detail(err error) string {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return strings.TrimSpace(strings.TrimPrefix(http.StatusText(he.Code), "handlers:"))
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && !strings.Contains(msg, "invalid") {
		msg = msg[i+2:]
	}
	for _, p := range []string{"handlers: ", "store: ", "comments: ", "drafts: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
