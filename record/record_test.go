package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func written() Event {
	return Event{
		Scope: DraftScope("water-2026"), Seq: 2, At: time.UnixMilli(1764120000123).UTC(), Intake: "0-0",
		Actor: AdminToken, Action: DraftPublished,
		Data: Data{"opens_at": int64(1764120000123), "closes_at": int64(1766712000000), "opens_now": true},
	}
}

// TestEncode states the whole encoding of an event: members sorted at every
// level, no white space, RFC 8785's escapes.
func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Event
		want string
	}{
		{"draft", written(),
			`{"action":"draft.published","actor":"admin-token","at":1764120000123,"data":{"closes_at":1766712000000,"opens_at":1764120000123,"opens_now":true},"intake":"0-0","scope":"draft:water-2026","seq":2,"v":1}`},
		{"staff", Event{Scope: Staff, Seq: 7, At: time.UnixMilli(5), Actor: User("u-1"), Action: TokenRevoked, Data: Data{"token": "t9"}},
			`{"action":"token.revoked","actor":"user:u-1","at":5,"data":{"token":"t9"},"scope":"staff","seq":7,"v":1}`},
		{"console", Event{Scope: Staff, Seq: 1, At: time.UnixMilli(1764120000123), Actor: Console("root"), Action: BureauCreated, Data: Data{"name": "洪雅县司法局", "bureau": "b1"}},
			`{"action":"bureau.created","actor":"console:root","at":1764120000123,"data":{"bureau":"b1","name":"洪雅县司法局"},"scope":"staff","seq":1,"v":1}`},
		{"lockout", Event{Scope: Staff, Seq: 9, At: time.UnixMilli(7), Actor: System, Action: UserLockedOut, Data: Data{"user": "wang", "failures": 5, "lockout_ms": int64(900000)}},
			`{"action":"user.locked_out","actor":"system","at":7,"data":{"failures":5,"lockout_ms":900000,"user":"wang"},"scope":"staff","seq":9,"v":1}`},
		{"escapes and nesting", Event{Scope: DraftScope("d1"), Seq: 1, At: time.UnixMilli(0), Intake: "1764120000123-4", Actor: System, Action: DigestSent,
			Data: Data{"z": []string{"a\"b", `c\d`}, "m": Data{"y": "\b\t\n\f\r\x01\x1f", "x": "<&> \u2028 é 中 \x7f"}, "e": []string{}}},
			`{"action":"digest.sent","actor":"system","at":0,"data":{"e":[],"m":{"x":"<&> ` + "\u2028" + ` é 中 ` + "\x7f" + `","y":"\b\t\n\f\r\u0001\u001f"},"z":["a\"b","c\\d"]},"intake":"1764120000123-4","scope":"draft:d1","seq":1,"v":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("Encode =\n%s\nwant\n%s", b, tc.want)
			}
			// Any JSON reader reads the same values.
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			again, _ := got.Encode()
			if !bytes.Equal(again, b) {
				t.Fatalf("round trip:\n%s\n%s", again, b)
			}
			h, _ := got.Hash()
			sum := sha256.Sum256(b)
			if h != hex.EncodeToString(sum[:]) {
				t.Fatalf("Hash = %s, want the SHA-256 of the bytes", h)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	b, _ := written().Encode()
	e, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, written()) {
		t.Fatalf("Parse =\n%#v\nwant\n%#v", e, written())
	}
}

// TestParseRefuses: bytes that decode to an event but are not its canonical
// encoding are refused, so that no two byte strings stand for one event.
func TestParseRefuses(t *testing.T) {
	good, _ := written().Encode()
	s := string(good)
	for name, b := range map[string]string{
		"space":            strings.Replace(s, `,"seq"`, `, "seq"`, 1),
		"key order":        strings.Replace(s, `{"action":"draft.published","actor":"admin-token"`, `{"actor":"admin-token","action":"draft.published"`, 1),
		"duplicate key":    strings.Replace(s, `"v":1}`, `"v":1,"v":1}`, 1),
		"unknown member":   strings.Replace(s, `"v":1}`, `"v":1,"w":2}`, 1),
		"version":          strings.Replace(s, `"v":1}`, `"v":2}`, 1),
		"float":            strings.Replace(s, `"seq":2`, `"seq":2.0`, 1),
		"exponent":         strings.Replace(s, `"seq":2`, `"seq":2e0`, 1),
		"escaped letter":   strings.Replace(s, `"admin-token"`, `"\u0061dmin-token"`, 1),
		"unknown action":   strings.Replace(s, `draft.published`, `draft.deleted`, 1),
		"staff action":     strings.Replace(s, `draft.published`, `user.created`, 1),
		"no intake":        strings.Replace(s, `,"intake":"0-0"`, ``, 1),
		"bad intake":       strings.Replace(s, `"0-0"`, `"zero"`, 1),
		"seq zero":         strings.Replace(s, `"seq":2`, `"seq":0`, 1),
		"null data":        strings.Replace(s, `"data":{"closes_at":1766712000000,"opens_at":1764120000123,"opens_now":true}`, `"data":null`, 1),
		"null value":       strings.Replace(s, `"opens_now":true`, `"opens_now":null`, 1),
		"number list":      strings.Replace(s, `"opens_now":true`, `"opens_now":[1]`, 1),
		"big integer":      strings.Replace(s, `"closes_at":1766712000000`, `"closes_at":9007199254740993`, 1),
		"trailing":         s + "\n",
		"invalid utf8":     strings.Replace(s, `"0-0"`, "\"0-0\xff\"", 1),
		"bad actor":        strings.Replace(s, `"admin-token"`, `"admin token"`, 1),
		"empty":            ``,
		"template holes":   "{\"at\":\x00T}",
		"upper-case key":   strings.Replace(s, `"opens_now"`, `"Opens_now"`, 1),
		"unescaped ctrl":   strings.Replace(s, `"0-0"`, "\"0-0\t\"", 1),
		"escaped slash":    strings.Replace(s, `"draft:water-2026"`, `"draft:water\/2026"`, 1),
		"negative time":    strings.Replace(s, `"at":1764120000123`, `"at":-1`, 1),
		"two values":       s + s,
		"scope without id": strings.Replace(s, `"draft:water-2026"`, `"draft:"`, 1),
	} {
		if _, err := Parse([]byte(b)); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("%s: Parse(%q) = %v, want ErrNotCanonical", name, b, err)
		}
	}
}

func TestInvalidEvents(t *testing.T) {
	ok := Pending(DraftScope("d1"), AdminToken, DraftLimitsChanged, Data{"pow_bits": 20})
	if _, err := ok.Template(); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]Event{
		"unknown action":   Pending(DraftScope("d1"), AdminToken, "draft.deleted", nil),
		"staff in draft":   Pending(DraftScope("d1"), AdminToken, UserCreated, nil),
		"draft in staff":   Pending(Staff, AdminToken, DraftCreated, nil),
		"bureau in draft":  Pending(DraftScope("d1"), Console("root"), BureauCreated, nil),
		"lockout in draft": Pending(DraftScope("d1"), System, UserLockedOut, nil),
		"no actor":         Pending(DraftScope("d1"), "", DraftCreated, nil),
		"actor with space": Pending(DraftScope("d1"), User("a b"), DraftCreated, nil),
		"empty user":       Pending(DraftScope("d1"), User(""), DraftCreated, nil),
		"bad scope":        Pending("draft:{x}", AdminToken, DraftCreated, nil),
		"bad key":          Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"Title": "x"}),
		"float":            Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"n": 1.5}),
		"big":              Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"n": int64(1) << 60}),
		"bad utf8":         Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"s": "\xff"}),
		"time value":       Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"t": time.Now()}),
		"nil value":        Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"t": nil}),
		"bad nested key":   Pending(DraftScope("d1"), AdminToken, DraftCreated, Data{"m": Data{"-": 1}}),
	} {
		if _, err := e.Template(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Template = %v, want ErrInvalid", name, err)
		}
	}
	// RedisTime is for templates only: a written event carries the time itself.
	e := written()
	e.Data = Data{"opens_at": RedisTime}
	if _, err := e.Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode with RedisTime = %v", err)
	}
	e = written()
	e.At = time.UnixMilli(5).Add(time.Microsecond)
	if _, err := e.Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode with sub-millisecond time = %v", err)
	}
	e = written()
	e.Intake = ""
	if _, err := e.Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("draft event without intake position = %v", err)
	}
}

// TestTemplate: filling a template's holes (as the Redis script does) gives
// the event's encoding.
func TestTemplate(t *testing.T) {
	for _, e := range []Event{written(), {Scope: Staff, Seq: 3, At: time.UnixMilli(99), Actor: Token("tk"), Action: UserCreated, Data: Data{"user": "u1"}}} {
		p := e
		p.Data = Data{}
		for k, v := range e.Data {
			p.Data[k] = v
		}
		if _, ok := p.Data["opens_at"]; ok {
			p.Data["opens_at"] = RedisTime // the same instant as At in written()
		}
		tpl, err := p.Template()
		if err != nil {
			t.Fatal(err)
		}
		filled := strings.ReplaceAll(string(tpl), holeTime, strconv.FormatInt(e.At.UnixMilli(), 10))
		filled = strings.Replace(filled, holeIntake, e.Intake, 1)
		filled = strings.Replace(filled, holeSeq, strconv.FormatInt(e.Seq, 10), 1)
		want, _ := e.Encode()
		if filled != string(want) {
			t.Errorf("filled template\n%s\nwant\n%s", filled, want)
		}
		if e.Scope == Staff && strings.Contains(string(tpl), holeIntake) {
			t.Error("staff template has an intake hole")
		}
	}
}

func TestActorsAndScopes(t *testing.T) {
	for a, want := range map[Actor]bool{Public: true, System: true, AdminToken: true, User("42"): true, Token("tok_9.a-b"): true,
		Console("root"): true, Console("deploy.bot-2"): true, Console(strings.Repeat("x", 128)): true,
		"user:": false, "root": false, "token:a:b": false, User(strings.Repeat("x", 129)): false,
		Console(""): false, Console("DOMAIN\\jdoe"): false, Console("jdoe@corp"): false, Console("a b"): false,
		Console(strings.Repeat("x", 129)): false, "Console:root": false, "console": false, "admin-token:x": false} {
		if a.Valid() != want {
			t.Errorf("%q.Valid() = %v", a, !want)
		}
	}
	if id, ok := DraftScope("d-1").DraftID(); !ok || id != "d-1" {
		t.Errorf("DraftID = %q, %v", id, ok)
	}
	if _, ok := Staff.DraftID(); ok {
		t.Error("staff scope has a draft")
	}
}

// FuzzParse checks Parse's promise: what it accepts is the canonical encoding
// of the event it returns, and the event encodes again without error.
func FuzzParse(f *testing.F) {
	good, _ := written().Encode()
	f.Add(good)
	f.Add([]byte(`{"action":"token.revoked","actor":"user:u-1","at":5,"data":{"token":"t9"},"scope":"staff","seq":7,"v":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrNotCanonical) {
				t.Fatalf("error %v is not ErrNotCanonical", err)
			}
			return
		}
		out, err := e.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("Parse accepted %q but Encode gives %q, %v", b, out, err)
		}
	})
}
