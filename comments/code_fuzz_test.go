package comments

import (
	"regexp"
	"testing"
)

var canonicalCode = regexp.MustCompile(`^[1-9][0-9]{0,11}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$`)

// FuzzParseCode: a receipt code typed by anyone never crashes the parser, and what
// it accepts comes out canonical and parses to itself.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"12-ABCDE-FGHJK", " 12-abcde-fghlk", "0-00000-00000", "99999999999999-AAAAA-AAAAA", "1-OOOOO-IIIII", "1--", "中文-ABCDE-FGHJK", "1-ABCDE-FGHJ\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, ref, ok := ParseCode(in)
		if !ok {
			return
		}
		if !canonicalCode.MatchString(code) || ref <= 0 {
			t.Fatalf("ParseCode(%q) = %q, %d: not canonical", in, code, ref)
		}
		again, ref2, ok2 := ParseCode(code)
		if !ok2 || again != code || ref2 != ref {
			t.Fatalf("ParseCode(%q) = %q but ParseCode(%q) = %q, %v", in, code, code, again, ok2)
		}
	})
}
