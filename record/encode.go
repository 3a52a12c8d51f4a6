package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The canonical encoding of an event is JSON as RFC 8785 (the JSON
// Canonicalization Scheme) writes it, for the few types an event holds: objects
// with their members sorted by name, no white space, integers in decimal,
// strings with only '"', '\' and the control characters escaped (\b \t \n \f \r,
// else \u00xx). Any JCS library rebuilds the same bytes from the fields, so a
// reviewer can check a hash without this code. The members are:
//
//	{"action":…,"actor":…,"at":<ms>,"data":{…},"intake":"<stream id>","scope":…,"seq":<n>,"v":1}
//
// with "intake" in a consultation's record only.
//
// maxInt bounds integers, so that a reader that takes every JSON number as a
// float64 (JavaScript, jq) still reads them exactly.
const maxInt = 1<<53 - 1

// The holes of a template (see Template): bytes that never appear in canonical
// JSON, where control characters are escaped.
const (
	holeTime   = "\x00T"
	holeIntake = "\x00I"
	holeSeq    = "\x00S"
)

// Encode returns the canonical encoding of a written event (Seq, At and Intake
// set), or an error wrapping ErrInvalid.
func (e Event) Encode() ([]byte, error) {
	if err := e.check(true); err != nil {
		return nil, err
	}
	return e.encode(false)
}

// Template returns the canonical encoding of a pending event with holes where
// Redis fills in the event's time (and each RedisTime in its data), its intake
// position and its sequence number, in the script that writes it. Seq, At and
// Intake are ignored. Errors wrap ErrInvalid.
func (e Event) Template() ([]byte, error) {
	if err := e.check(false); err != nil {
		return nil, err
	}
	return e.encode(true)
}

func (e Event) encode(template bool) ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"action":`...)
	b = appendString(b, string(e.Action))
	b = append(b, `,"actor":`...)
	b = appendString(b, string(e.Actor))
	b = append(b, `,"at":`...)
	if template {
		b = append(b, holeTime...)
	} else {
		b = strconv.AppendInt(b, e.At.UnixMilli(), 10)
	}
	b = append(b, `,"data":`...)
	b, err := appendData(b, e.Data, template)
	if err != nil {
		return nil, err
	}
	if _, draft := e.Scope.DraftID(); draft {
		b = append(b, `,"intake":`...)
		if template {
			b = append(b, '"')
			b = append(b, holeIntake...)
			b = append(b, '"')
		} else {
			b = appendString(b, e.Intake)
		}
	}
	b = append(b, `,"scope":`...)
	b = appendString(b, string(e.Scope))
	b = append(b, `,"seq":`...)
	if template {
		b = append(b, holeSeq...)
	} else {
		b = strconv.AppendInt(b, e.Seq, 10)
	}
	b = append(b, `,"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	return append(b, '}'), nil
}

func appendData(b []byte, d Data, template bool) ([]byte, error) {
	keys := make([]string, 0, len(d))
	for k := range d {
		if !dataKey(k) {
			return nil, fmt.Errorf("%w: data key %q", ErrInvalid, k)
		}
		keys = append(keys, k)
	}
	// Byte order, which for ASCII names is JCS's order of UTF-16 code units.
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, k, d[k], template); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, k string, v any, template bool) ([]byte, error) {
	bad := func() ([]byte, error) { return nil, fmt.Errorf("%w: data %s: %T %v", ErrInvalid, k, v, v) }
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			return bad()
		}
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return appendValue(b, k, int64(v), template)
	case int64:
		if v > maxInt || v < -maxInt {
			return bad()
		}
		return strconv.AppendInt(b, v, 10), nil
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if !utf8.ValidString(s) {
				return bad()
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case Data:
		return appendData(b, v, template)
	case map[string]any:
		return appendData(b, Data(v), template)
	case redisTime:
		if !template {
			return bad()
		}
		return append(b, holeTime...), nil
	}
	return bad()
}

// dataKey reports whether k may name a member of Data: [a-z][a-z0-9_]{0,63}.
func dataKey(k string) bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// appendString quotes s as RFC 8785 does; s is valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Parse reads an event from its stored bytes. It accepts only the canonical
// encoding (Encode of the result gives b back, byte for byte), so that the
// hash of the bytes and the hash of the event are one. Errors wrap
// ErrNotCanonical.
func Parse(b []byte) (Event, error) {
	bad := func(why string) (Event, error) {
		return Event{}, fmt.Errorf("%w: %s", ErrNotCanonical, why)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return bad(err.Error())
	}
	if dec.More() {
		return bad("trailing data")
	}
	var e Event
	str := func(k string) string { s, _ := m[k].(string); return s }
	e.Action, e.Actor, e.Scope, e.Intake = Action(str("action")), Actor(str("actor")), Scope(str("scope")), str("intake")
	seq, ok1 := integer(m["seq"])
	at, ok2 := integer(m["at"])
	v, ok3 := integer(m["v"])
	if !ok1 || !ok2 || !ok3 || v != Version {
		return bad("seq, at or v")
	}
	e.Seq, e.At = seq, time.UnixMilli(at).UTC()
	dm, ok := m["data"].(map[string]any)
	if !ok {
		return bad("data is not an object")
	}
	var err error
	if e.Data, err = parseData(dm); err != nil {
		return bad(err.Error())
	}
	out, err := e.Encode()
	if err != nil {
		return bad(err.Error())
	}
	if !bytes.Equal(out, b) {
		return bad("bytes differ from the event's encoding")
	}
	return e, nil
}

func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

func parseData(m map[string]any) (Data, error) {
	d := make(Data, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string, bool:
			d[k] = v
		case json.Number:
			i, ok := integer(v)
			if !ok {
				return nil, fmt.Errorf("data %s: %s is not an integer", k, v)
			}
			d[k] = i
		case []any:
			l := make([]string, len(v))
			for i, s := range v {
				var ok bool
				if l[i], ok = s.(string); !ok {
					return nil, fmt.Errorf("data %s: a list of %T", k, s)
				}
			}
			d[k] = l
		case map[string]any:
			sub, err := parseData(v)
			if err != nil {
				return nil, err
			}
			d[k] = sub
		default:
			return nil, fmt.Errorf("data %s: %T", k, v)
		}
	}
	return d, nil
}
