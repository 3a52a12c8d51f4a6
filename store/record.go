package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	// Named rec here: this package has a type record of its own (a receipt's).
	rec "consult/record"
)

// A record is a Redis list of canonical events (package record), appended to
// by the same script that makes the change it records, never by a call of its
// own: a change without its event, or an event without its change, cannot be
// left by a crash or a failover. An event's place in the list is its sequence
// number minus one, so the order is total and gap-free by construction: every
// append to a record runs inside one script, and scripts run one at a time on
// the record's node. No code changes or removes an element (the record test
// checks every script in the store and in notify for commands that would).
//
// A list rather than a stream: the sequence number is the list's length, with
// no second counter to keep in step, and a page is one LRANGE by position. A
// later transparency log takes the elements as its leaves in this order.

// recordLua is prepended to every script that appends to a record. It defines:
//
//	record_now() -> the Redis server's time in ms, to take once per script, so
//	  that the change and its event carry the same instant.
//	record_append(record key, intake stream key or false, now, template)
//	  appends one event: the template (record.Event.Template) with its holes
//	  filled with now, the draft's last intake entry id ("0-0" for none; only
//	  in a draft's record) and the next sequence number. It returns that number.
//
// Call record_append after the script's own checks and before its first write:
// it raises an error on a template whose holes do not match its record, and a
// script's writes before an error stay written. Once a script has written,
// Redis lets it finish its writes even past maxmemory, so nothing after
// record_append is refused halfway.
const recordLua = `
local function record_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function record_append(list, intake, now, tpl)
  local seq = redis.call('LLEN', list) + 1
  local pos = '0-0'
  if intake then
    local last = redis.call('XREVRANGE', intake, '+', '-', 'COUNT', 1)
    if last[1] then pos = last[1][1] end
  end
  local e, holes = string.gsub(tpl, '%zT', string.format('%d', now))
  if holes < 1 then error('record_append: template without a time hole') end
  e, holes = string.gsub(e, '%zI', pos)
  if holes ~= (intake and 1 or 0) then error('record_append: template and record disagree about the intake') end
  e, holes = string.gsub(e, '%zS', string.format('%d', seq))
  if holes ~= 1 or string.find(e, '%z') then error('record_append: malformed template') end
  redis.call('RPUSH', list, e)
  return seq
end
`

// RecordedScript declares a script that may call record_now and
// record_append (see recordLua). It is for the scripts of other packages that
// change a consultation's or the staff's state (notify's digest delivery): they
// pass the record's keys from DraftRecordKeys or StaffRecordKey and the event's
// template (record.Event.Template) as arguments, and state them in their
// contract header. This package's own (drafts, accounts) declare theirs the
// same way.
func RecordedScript(src string) *redis.Script { return redis.NewScript(recordLua + src) }

// DraftRecordKeys returns the keys record_append takes for a draft's record:
// the record itself and the draft's intake stream. Both carry the draft's hash
// tag, like every key a script of that draft touches.
func DraftRecordKeys(draftID string) (events, intake string) {
	return recordList(draftID), intakeStream(draftID)
}

// StaffRecordKey is the record of users and tokens. A script that appends to it
// touches only keys under the same hash tag (see staffRecord).
func StaffRecordKey() string { return staffRecord }

// Records reads records back.
type Records struct {
	rdb redis.UniversalClient
}

// NewRecords returns a Records on rdb, which it never dials itself.
func NewRecords(rdb redis.UniversalClient) *Records { return &Records{rdb: rdb} }

// MaxPage is the most events Page returns at once.
const MaxPage = 1000

// Page returns the events of scope's record after sequence number after (0:
// from the first), at most limit of them (1 to MaxPage), in order, and the
// number to pass as after for the next page: 0 when there is none yet. The
// record of a draft that does not exist is empty. Each element is checked to be
// a canonical event in its place; a damaged record is an error wrapping
// record.ErrNotCanonical.
func (r *Records) Page(ctx context.Context, scope rec.Scope, after, limit int64) ([]rec.Event, int64, error) {
	key := staffRecord
	if id, ok := scope.DraftID(); ok {
		key = recordList(id)
	} else if scope != rec.Staff {
		return nil, 0, fmt.Errorf("store: record %s: %w: scope", scope, rec.ErrInvalid)
	}
	if after < 0 || limit < 1 || limit > MaxPage {
		return nil, 0, fmt.Errorf("store: record %s: after %d, limit %d: %w", scope, after, limit, rec.ErrInvalid)
	}
	// One more than asked, to tell whether a next page exists.
	vals, err := r.rdb.LRange(ctx, key, after, after+limit).Result()
	if err != nil {
		return nil, 0, wrap("record "+string(scope), err)
	}
	more := int64(len(vals)) > limit
	if more {
		vals = vals[:limit]
	}
	out := make([]rec.Event, len(vals))
	for i, v := range vals {
		e, err := rec.Parse([]byte(v))
		if err == nil && (e.Scope != scope || e.Seq != after+int64(i)+1) {
			err = fmt.Errorf("%w: seq %d of %s at place %d", rec.ErrNotCanonical, e.Seq, e.Scope, after+int64(i)+1)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("store: record %s: %w", scope, err)
		}
		out[i] = e
	}
	var next int64
	if more {
		next = out[len(out)-1].Seq
	}
	return out, next, nil
}

// template returns e's template, for a script's arguments.
func template(e rec.Event) (string, error) {
	b, err := e.Template()
	return string(b), err
}
