package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// unavailableError marks a failure of the storage, not of the request: Redis is
// down, unreachable, too slow for the request's deadline, loading, out of memory,
// or the intake is shutting down. The request may succeed later unchanged.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable lets the web layer tell an outage (503 with Retry-After) from a
// bug (500) by behaviour, without importing this package and go-redis with it:
//
//	var u interface{ Unavailable() bool }
//	if errors.As(err, &u) && u.Unavailable() { … }
func (e *unavailableError) Unavailable() bool { return true }

// ErrUnavailable is matched by every error this package marks unavailable
// (errors.Is), for callers that do import it (tests, cmd).
var ErrUnavailable = errors.New("store: unavailable")

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// wrap adds the operation to err and marks it unavailable when it is one of the
// storage's own failures (see unavailableError). Sentinels of the domain packages
// pass through unmarked.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if outage(err) {
		err = &unavailableError{err: err}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// outage reports whether err is the storage failing rather than the request.
func outage(err error) bool {
	var ne net.Error
	var ue *unavailableError
	switch {
	case errors.As(err, &ue):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, errClosed),
		errors.As(err, &ne):
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		// Replies that say the server cannot serve now, not that the command is wrong.
		for _, p := range []string{"LOADING", "OOM", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS", "READONLY", "MOVED", "ASK"} {
			if strings.HasPrefix(re.Error(), p+" ") || re.Error() == p {
				return true
			}
		}
	}
	return false
}
