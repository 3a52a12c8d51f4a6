package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/redis/go-redis/v9"

	"consult/comments"
)

// entryVersion is the format of an intake stream entry, the first member of its
// JSON. Version 2 keeps names and contacts out of the entry (see piiHash): the
// stream is the record and is never rewritten, and personal data must be
// erasable. An entry has the fields "c" (the JSON), "recv" (Redis's time, ms)
// and, for a duplicate, "dup": every field costs Redis work per comment.
const entryVersion = 2

// intakeScript records a batch of comments on one draft: one script call per
// batch and draft, so that the cost of entering Lua and of reading the window is
// paid once for many comments. The window is decided by the Redis server's clock.
//
// Each comment is checked, in this order:
//  1. its receipt code is already recorded: this very call ran before (go-redis
//     sends a pipeline again after a read timeout) and the first result stands;
//     nothing is stored twice, whatever the client sent;
//  2. its idempotency key was used before: the first receipt is returned;
//  3. the window is open;
//  4. Redis's clock has not passed the comment's not-after time: past it, the
//     client has given up waiting, and a comment it holds no receipt for must
//     not be stored;
//  5. the draft's caps on stored comments and bytes (when not switched off).
//
// Then the comment is appended to the stream without the personal fields,
// which go to the personal-data hash under the same code, and the receipt
// record is written. A client that already sent the same text on this draft
// gets its comment flagged duplicate (kept and counted all the same). A
// comment's received time is its entry id's milliseconds: Redis's clock, kept
// from going backwards by the stream.
//
// Redis spends a comment's cost here mostly per redis.call and per string or
// number Lua makes (measured with callgrind), so apart from the one XADD per
// comment the script works on the whole batch at once: one HMGET of every
// code's record, one SMISMEMBER and one SADD of the duplicate hashes, one HSET
// of the records and one of the personal data. It keeps Redis's time as a
// string and compares times as strings (both are 13-digit milliseconds).
//
//	KEYS[1] draft hash, KEYS[2] intake stream, KEYS[3] receipts hash,
//	KEYS[4] personal-data hash, KEYS[5] counts hash, KEYS[6] duplicates set,
//	KEYS[7…] the idempotency keys of the comments that have one
//	ARGV[1] idempotency TTL (s), ARGV[2] default max comments, ARGV[3] default
//	max bytes (0 = no cap; ARGV[2] = -1: caps off, and bytes are not counted),
//	then per comment, 8 each: code, entry JSON, personal JSON ("" = none),
//	idempotency KEYS index ("0" = none), content hash, duplicate hash
//	("" = unknown client), size (bytes counted against the cap), not-after
//	(Redis ms, 13 digits)
//	returns {now ms, one item per comment}: the new entry's id (stored now: the
//	common case, one string) | {"DONE", record} | {"IDEM", code, record,
//	content hash} | {"ERR", "NOT_FOUND" | "WINDOW_NOT_OPEN" |
//	"WINDOW_CLOSED" | "LATE" | "FULL"}
var intakeScript = redis.NewScript(`
local t = redis.call('TIME')
local nows = t[1] .. string.sub(string.format('%06d', t[2]), 1, 3)
local now = tonumber(nows)
local w = redis.call('HMGET', KEYS[1], 'opens_ms', 'closes_ms', 'max_comments', 'max_bytes')
local refuse = nil
if not w[1] then refuse = 'NOT_FOUND'
elseif now < tonumber(w[1]) then refuse = 'WINDOW_NOT_OPEN'
elseif now >= tonumber(w[2]) then refuse = 'WINDOW_CLOSED' end
local capsOn = ARGV[2] ~= '-1'
local maxN = tonumber(w[3] or '0') or 0
if maxN == 0 then maxN = tonumber(ARGV[2]) end
local maxB = tonumber(w[4] or '0') or 0
if maxB == 0 then maxB = tonumber(ARGV[3]) end
local codes = {}
for i = 4, #ARGV, 8 do codes[#codes+1] = ARGV[i] end
local prev = redis.call('HMGET', KEYS[3], unpack(codes))
local out = {now}
-- First pass: what each comment gets; those to store are listed in keep.
local keep, dups = {}, {}
local n, bytes, added = nil, 0, 0
for k = 1, #codes do
  local i = 4 + (k - 1) * 8
  local idem = ARGV[i+3] ~= '0' and KEYS[tonumber(ARGV[i+3])]
  local first = idem and redis.call('HMGET', idem, 'code', 'rec', 'ch')
  if prev[k] then
    out[k+1] = {'DONE', prev[k]}
  elseif first and first[1] then
    out[k+1] = {'IDEM', first[1], first[2], first[3]}
  elseif refuse then
    out[k+1] = {'ERR', refuse}
  elseif nows > ARGV[i+7] then
    out[k+1] = {'ERR', 'LATE'}
  else
    local size = 0
    if capsOn then
      size = tonumber(ARGV[i+6])
      if not n then
        n = redis.call('XLEN', KEYS[2])
        bytes = tonumber(redis.call('HGET', KEYS[5], 'bytes') or '0')
      end
    end
    if capsOn and ((maxN > 0 and n >= maxN) or (maxB > 0 and bytes + size > maxB)) then
      out[k+1] = {'ERR', 'FULL'}
    else
      keep[#keep+1] = k
      if ARGV[i+5] ~= '' then dups[#dups+1] = ARGV[i+5] end
      if n then n = n + 1 end
      bytes = bytes + size
      added = added + size
    end
  end
end
if #keep == 0 then return out end
-- Duplicates: seen before this batch, or earlier in it.
local seen = {}
if #dups > 0 then
  local before = redis.call('SMISMEMBER', KEYS[6], unpack(dups))
  for j = 1, #dups do
    if before[j] == 1 then seen[dups[j]] = true end
  end
  redis.call('SADD', KEYS[6], unpack(dups))
end
-- Second pass: append and record.
local recs, pers = {}, {}
for _, k in ipairs(keep) do
  local i = 4 + (k - 1) * 8
  local code, dk = ARGV[i], ARGV[i+5]
  local id
  if dk ~= '' and seen[dk] then
    id = redis.call('XADD', KEYS[2], '*', 'c', ARGV[i+1], 'dup', '1')
  else
    id = redis.call('XADD', KEYS[2], '*', 'c', ARGV[i+1])
    if dk ~= '' then seen[dk] = true end
  end
  recs[#recs+1] = code
  recs[#recs+1] = id
  if ARGV[i+2] ~= '' then
    pers[#pers+1] = code
    pers[#pers+1] = ARGV[i+2]
  end
  if ARGV[i+3] ~= '0' then
    local idem = KEYS[tonumber(ARGV[i+3])]
    redis.call('HSET', idem, 'code', code, 'rec', id, 'ch', ARGV[i+4])
    redis.call('EXPIRE', idem, ARGV[1])
  end
  out[k+1] = id
end
redis.call('HSET', KEYS[3], unpack(recs))
if capsOn then redis.call('HINCRBY', KEYS[5], 'bytes', added) end
if #pers > 0 then redis.call('HSET', KEYS[4], unpack(pers)) end
return out
`)

// entry is a comment as written into the intake stream, which is the durable
// record of every comment: workers settle entries, they never copy or trim them.
// The code, Redis's receive time and the version sit beside it in the entry.
// Personal data is not in it: only a salted commitment to it (PC), so that a
// receipt's digest detects a changed name or contact while they exist, and
// breaks no hash once they are erased (with the salt).
type entry struct {
	// V, Code and DraftID come first, in this order: check() reads them as a
	// prefix, without decoding.
	V           int               `json:"v"`
	Code        string            `json:"code"`
	DraftID     string            `json:"draft_id"`
	Section     string            `json:"section"`
	Body        string            `json:"body"`
	Category    comments.Category `json:"category"`
	PublishName bool              `json:"publish_name"`
	PC          string            `json:"pc,omitempty"`
}

// appendJSON appends the entry as json.Marshal writes it (the test checks they
// agree), without reflection: on the intake's path, reflection was the larger
// part of preparing a comment.
func (e entry) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	var err error
	for _, f := range [...]struct{ name, v string }{
		{`,"code":`, e.Code}, {`,"draft_id":`, e.DraftID}, {`,"section":`, e.Section},
		{`,"body":`, e.Body}, {`,"category":`, string(e.Category)},
	} {
		b = append(b, f.name...)
		if b, err = jsontext.AppendQuote(b, f.v); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"publish_name":`...)
	b = strconv.AppendBool(b, e.PublishName)
	if e.PC != "" {
		b = append(b, `,"pc":`...)
		if b, err = jsontext.AppendQuote(b, e.PC); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// personal is what the personal-data hash keeps per receipt code.
type personal struct {
	Name    string `json:"name,omitempty"`
	Contact string `json:"contact,omitempty"`
	Salt    string `json:"salt"`
}

// appendJSON appends p as json.Marshal writes it (see entry.appendJSON).
func (p personal) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	var err error
	sep := ""
	for _, f := range [...]struct{ name, v string }{{`"name":`, p.Name}, {`"contact":`, p.Contact}} {
		if f.v == "" {
			continue // omitempty
		}
		b = append(append(b, sep...), f.name...)
		if b, err = jsontext.AppendQuote(b, f.v); err != nil {
			return nil, err
		}
		sep = ","
	}
	b = append(append(b, sep...), `"salt":`...)
	if b, err = jsontext.AppendQuote(b, p.Salt); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// commitment binds a name and contact to an entry without revealing them: the
// salt makes it unguessable (a phone number has few enough digits to try them
// all against an unsalted hash).
func commitment(p personal) string {
	h := sha256.New()
	h.Write([]byte(p.Salt))
	h.Write([]byte{0})
	h.Write([]byte(p.Name))
	h.Write([]byte{0})
	h.Write([]byte(p.Contact))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// pending is one comment on its way into the intake script.
type pending struct {
	code     string
	entry    []byte
	personal []byte // nil when the commenter left neither name nor contact
	idemKey  string // the Redis key; "" for none
	content  string // the idempotency check's hash of what the citizen sent
	dup      string // "" when the client is unknown
	size     int
	notAfter time.Time // in this process's clock; converted to Redis's at send
}

// newPending prepares a normalized, validated submission for the script.
func newPending(sub comments.Submission, code string) (*pending, error) {
	e := entry{V: entryVersion, Code: code, DraftID: sub.DraftID, Section: sub.Section, Body: sub.Body, Category: sub.Category, PublishName: sub.PublishName}
	p := &pending{code: code, size: len(sub.Body) + len(sub.Name) + len(sub.Contact)}
	if sub.Name != "" || sub.Contact != "" {
		pd := personal{Name: sub.Name, Contact: sub.Contact, Salt: rand.Text()}
		e.PC = commitment(pd)
		b, err := pd.appendJSON(nil)
		if err != nil {
			return nil, err
		}
		p.personal = b
	}
	b, err := e.appendJSON(make([]byte, 0, 64+len(e.Body)+len(e.Section)))
	if err != nil {
		return nil, err
	}
	p.entry = b
	if sub.IdempotencyKey != "" {
		// A retry with the same idempotency key must repeat the same comment; its
		// code and salt differ on each attempt, so the check covers what the
		// citizen sent.
		h := sha256.New()
		for _, f := range []string{sub.Section, sub.Body, sub.Name, sub.Contact, string(sub.Category), strconv.FormatBool(sub.PublishName)} {
			h.Write([]byte(f))
			h.Write([]byte{0})
		}
		p.content = hex.EncodeToString(h.Sum(nil)[:8])
	}
	if sub.Client != "" {
		d := sha256.Sum256([]byte(sub.Client + "\x00" + strings.TrimSpace(sub.Body)))
		p.dup = hex.EncodeToString(d[:12])
	}
	return p, nil
}

// outcome is the script's answer for one comment.
type outcome struct {
	kind    string // OK, DONE, IDEM or ERR
	reason  string // for ERR
	code    string // for IDEM: the first receipt's code
	rec     record
	content string // for IDEM
}

// record is a receipt record, the receipts hash's value for a code: the
// comment's entry id, "r|<entry id>" once dead-lettered. The section and the
// rest are in the entry; the received time is the id's milliseconds.
type record struct {
	rejected   bool
	entry      string
	receivedMs int64
}

func parseRecord(v string) (record, bool) {
	id, rejected := strings.CutPrefix(v, "r|")
	ms, ok := entryTime(id)
	return record{rejected: rejected, entry: id, receivedMs: ms}, ok
}

// entryTime is when Redis received an entry: its id's milliseconds.
func entryTime(id string) (int64, bool) {
	msPart, seq, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseInt(msPart, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ms, found && err1 == nil && err2 == nil
}

// parseIntake reads the script's reply: Redis's time and one outcome per comment.
func parseIntake(v any, n int) (int64, []outcome, error) {
	top, ok := v.([]any)
	if !ok || len(top) != n+1 {
		return 0, nil, fmt.Errorf("intake reply: want %d items, got %T %v", n+1, v, v)
	}
	now, ok := top[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("intake reply: time is %T", top[0])
	}
	outs := make([]outcome, n)
	for i, x := range top[1:] {
		if id, isID := x.(string); isID {
			var rec record
			rec, ok = parseRecord(id)
			outs[i] = outcome{kind: "OK", rec: rec}
		} else {
			outs[i], ok = parseOutcome(x)
		}
		if !ok {
			return 0, nil, fmt.Errorf("intake reply %d: %v", i, x)
		}
	}
	return now, outs, nil
}

// parseOutcome reads one of the script's replies that is not a new entry.
func parseOutcome(x any) (outcome, bool) {
	f, _ := x.([]any)
	s := make([]string, len(f))
	for j, y := range f {
		s[j], _ = y.(string)
	}
	if len(s) < 2 {
		return outcome{}, false
	}
	o := outcome{kind: s[0]}
	ok := true
	switch {
	case o.kind == "ERR":
		o.reason = s[1]
	case o.kind == "DONE" && len(s) == 2:
		o.rec, ok = parseRecord(s[1])
	case o.kind == "IDEM" && len(s) == 4:
		o.code, o.content = s[1], s[3]
		o.rec, ok = parseRecord(s[2])
	default:
		ok = false
	}
	return o, ok
}
