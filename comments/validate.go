package comments

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"consult/drafts"
)

// Limits on a submission, in characters (runes).
const (
	MaxBody    = 5000
	MaxName    = 100
	MaxContact = 200
	MaxIdemKey = 128
)

// Normalize cleans a submission in place: CRLF becomes LF, and control characters
// other than newline and tab and the invisible format characters (see isFormat)
// are removed, so that what is stored is what is shown. Invalid UTF-8 is left for
// Validate to refuse: guessing at bytes would change the citizen's words.
func Normalize(s *Submission) {
	s.Body = clean(strings.ReplaceAll(s.Body, "\r\n", "\n"), true)
	s.Name = strings.TrimSpace(clean(s.Name, false))
	s.Contact = strings.TrimSpace(clean(s.Contact, false))
	s.Section = strings.TrimSpace(s.Section)
	if s.Category == "" {
		s.Category = CategoryIndividual
	}
}

func clean(v string, multiline bool) string {
	if !needsClean(v, multiline) || !utf8.ValidString(v) {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			if multiline {
				return r
			}
			return ' '
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' || isFormat(r) {
			return -1
		}
		return r
	}, v)
}

// isFormat reports the invisible format characters that are removed: zero-width
// spaces and joiners and the direction marks (U+200B–U+200F), the bidirectional
// embeddings and overrides (U+202A–U+202E), the word joiner and invisible
// operators (U+2060–U+2064) and the bidirectional isolates (U+2066–U+2069). They
// show nothing, yet they can reorder what a reader sees (a name that reads
// differently from what is stored), hide text from a search, or make two equal
// looking comments differ. The emoji joiner U+200D goes with them: a family emoji
// then shows as its members, which changes no one's words.
func isFormat(r rune) bool {
	return r >= 0x200b && r <= 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2060 && r <= 0x2064 || r >= 0x2066 && r <= 0x2069
}

// Validate checks a normalized submission against the draft it is for. It returns
// a *ValidationError naming each bad field, with the catalogue key that says why.
func Validate(s Submission, d drafts.Draft) error {
	f := map[string]FieldError{}
	text := func(name, v string, max int) bool {
		if !utf8.ValidString(v) {
			f[name] = FieldError{Key: "err.utf8"}
			return false
		}
		if n := utf8.RuneCountInString(v); n > max {
			f[name] = FieldError{Key: "err.too_long", Args: []any{max, n}}
			return false
		}
		return true
	}
	switch n := utf8.RuneCountInString(s.Body); {
	case !utf8.ValidString(s.Body):
		f["body"] = FieldError{Key: "err.utf8"}
	case n > MaxBody:
		// The body says how much to cut: it is the one field people overrun.
		f["body"] = FieldError{Key: "err.body.too_long", Args: []any{MaxBody, n, n - MaxBody}}
	case strings.TrimSpace(s.Body) == "":
		f["body"] = FieldError{Key: "err.body.required"}
	}
	text("name", s.Name, MaxName)
	text("contact", s.Contact, MaxContact)
	if s.Section != "" {
		if _, ok := d.Section(s.Section); !ok {
			f["section"] = FieldError{Key: "err.section"}
		}
	}
	valid := false
	for _, c := range Categories {
		valid = valid || s.Category == c
	}
	if !valid {
		f["category"] = FieldError{Key: "err.category"}
	}
	if len(s.IdempotencyKey) > MaxIdemKey || !printableASCII(s.IdempotencyKey) {
		f["idempotency_key"] = FieldError{Key: "err.idempotency", Args: []any{MaxIdemKey}}
	}
	if len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// needsClean is clean's fast path: a byte scan that finds nothing to remove in
// almost every comment, so that the intake copies nothing. cleanLead marks the
// bytes that may start something clean removes.
func needsClean(v string, multiline bool) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !cleanLead[b] {
			continue
		}
		switch {
		case b == '\n' || b == '\t':
			if !multiline {
				return true
			}
		case b < 0x20 || b == 0x7f:
			return true
		case b == 0xc2 && i+1 < len(v) && v[i+1] >= 0x80 && v[i+1] <= 0x9f: // C1 controls
			return true
		case b == 0xe2 && i+2 < len(v) && (v[i+1] == 0x80 && cleanE280[v[i+2]] || v[i+1] == 0x81 && cleanE281[v[i+2]]):
			return true // U+2028, U+2029 and the format characters (isFormat)
		case b == 0xef && i+2 < len(v) && v[i+1] == 0xbb && v[i+2] == 0xbf: // U+FEFF
			return true
		}
	}
	return false
}

var cleanLead = func() (t [256]bool) {
	for b := 0; b < 0x20; b++ {
		t[b] = true
	}
	t[0x7f], t[0xc2], t[0xe2], t[0xef] = true, true, true, true
	return t
}()

// cleanE280 and cleanE281 mark the last byte of the three-byte characters after
// E2 80 (U+2000–U+203F) and E2 81 (U+2040–U+207F) that clean removes: every
// character U+2028, U+2029 and isFormat name lies in these two blocks.
var cleanE280, cleanE281 = func() (a, b [256]bool) {
	for r := rune(0x2000); r < 0x2080; r++ {
		if r == '\u2028' || r == '\u2029' || isFormat(r) {
			if r < 0x2040 {
				a[0x80|r&0x3f] = true
			} else {
				b[0x80|r&0x3f] = true
			}
		}
	}
	return a, b
}()
