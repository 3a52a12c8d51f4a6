package comments

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"consult/drafts"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, body, name string }{
		{"普通意见", "普通意见", ""},
		{"第一行\r\n第二行\t缩进", "第一行\n第二行\t缩进", ""},
		{"响铃\a与\x00空字节\x7f", "响铃与空字节", ""},
		{"C1\u0085控制\u2028分隔\ufeff", "C1控制分隔", ""},
	}
	for _, c := range cases {
		s := Submission{Body: c.in, Name: " 张\n三\t "}
		Normalize(&s)
		if s.Body != c.body || s.Name != "张 三" || s.Category != CategoryIndividual {
			t.Errorf("Normalize(%q) = %q, name %q, category %q", c.in, s.Body, s.Name, s.Category)
		}
	}
	bad := Submission{Body: "\xff\xfe"}
	Normalize(&bad)
	if bad.Body != "\xff\xfe" {
		t.Error("Normalize changed invalid UTF-8 instead of leaving it to Validate")
	}
}

// TestNormalizeFormatCharacters: the invisible format characters go from names,
// contacts and bodies; their neighbours in the same blocks stay.
func TestNormalizeFormatCharacters(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"zero width space", "意\u200b见", "意见"},
		{"zero width non-joiner and joiner", "a\u200cb\u200dc", "abc"},
		{"direction marks", "\u200e左\u200f右", "左右"},
		{"embeddings and overrides", "\u202a1\u202b2\u202c3\u202d4\u202e5", "12345"},
		{"right-to-left override hiding a reversed name", "张三\u202e四李", "张三四李"},
		{"word joiner and invisible operators", "x\u2060\u2061\u2062\u2063\u2064y", "xy"},
		{"isolates", "\u2066甲\u2067乙\u2068丙\u2069", "甲乙丙"},
		{"only format characters", "\u200b\u200b\u2060", ""},
		{"kept: en quad to hair space, hyphen, dashes", "\u2000\u200a\u2010\u2014", "\u2000\u200a\u2010\u2014"},
		{"kept: figure dash to ellipsis, per mille", "\u2012…‰", "\u2012…‰"},
		{"kept: narrow no-break space, U+2065 (unassigned), superscript zero", "\u202f\u2065\u2070", "\u202f\u2065\u2070"},
		{"kept: the characters just outside each range", "\u200a\u2010\u2029x\u202f\u205f\u2065\u206a", "\u200a\u2010x\u202f\u205f\u2065\u206a"},
		{"cut short at the end", "意见\xe2\x80", "意见\xe2\x80"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Submission{Body: c.in, Name: c.in, Contact: c.in}
			Normalize(&s)
			wantLine := strings.TrimSpace(c.want)
			if s.Body != c.want || s.Name != wantLine || s.Contact != wantLine {
				t.Errorf("Normalize(%+q): body %+q, name %+q, contact %+q; want %+q", c.in, s.Body, s.Name, s.Contact, c.want)
			}
		})
	}
	// A body of nothing but format characters is empty, and so refused.
	s := Submission{Body: "\u200b\u202e\u2060"}
	Normalize(&s)
	if err := Validate(s, drafts.Draft{}); err == nil {
		t.Error("a body of format characters only was accepted")
	}
}

// TestNeedsCleanAgreesWithClean: the byte pre-scan says "nothing to do" exactly
// when clean would change nothing, for every character up to U+FFFF.
func TestNeedsCleanAgreesWithClean(t *testing.T) {
	for r := rune(0); r <= 0xffff; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		for _, multiline := range []bool{false, true} {
			v := "a" + string(r) + "b"
			if got, want := needsClean(v, multiline), removes(v, multiline); got != want {
				t.Fatalf("needsClean(%+q, %v) = %v, clean changes it: %v", v, multiline, got, want)
			}
		}
	}
}

func removes(v string, multiline bool) bool {
	for _, r := range v {
		switch {
		case r == '\n' || r == '\t':
			if !multiline {
				return true
			}
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' || isFormat(r):
			return true
		}
	}
	return false
}

// FuzzNormalize checks what Normalize promises: valid UTF-8 comes out valid with
// no control or format character left but newline (and tab, in the body);
// invalid UTF-8 keeps its bytes (CRLF aside); and a second Normalize changes nothing.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"意见", "a\r\nb", "\u202e反转\u202c", "\u200b", "\xe2\x80", "\xe2\x81\xa0x", "\xff", "\t \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := Submission{Body: in, Name: in, Contact: in}
		Normalize(&s)
		if !utf8.ValidString(in) {
			// Left for Validate to refuse: only line ends are touched.
			if s.Body != strings.ReplaceAll(in, "\r\n", "\n") || utf8.ValidString(s.Body) {
				t.Fatalf("invalid UTF-8 changed: %+q -> %+q", in, s.Body)
			}
			return
		}
		for field, v := range map[string]string{"body": s.Body, "name": s.Name, "contact": s.Contact} {
			if !utf8.ValidString(v) {
				t.Fatalf("%s %+q is not valid UTF-8", field, v)
			}
			if removes(v, field == "body") {
				t.Fatalf("%s %+q still holds a character Normalize removes", field, v)
			}
		}
		again := s
		Normalize(&again)
		if again != s {
			t.Fatalf("Normalize is not idempotent: %+q -> %+q", s.Body, again.Body)
		}
	})
}
