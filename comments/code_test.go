package comments

import "testing"

func TestParseCode(t *testing.T) {
	for in, want := range map[string]string{
		"12-ABCDE-FGH1K":  "12-ABCDE-FGH1K",
		" 12-abcde-fghlk": "12-ABCDE-FGH1K",
		"12-ABCDEFGHIK":   "12-ABCDE-FGH1K",
		"012-0O000-00000": "12-00000-00000",
	} {
		if got, _, ok := ParseCode(in); !ok || got != want {
			t.Errorf("ParseCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "12", "x-ABCDE-FGHJK", "12-ABCDE-FGHJ", "12-ABCDE-FGHJU", "-1-ABCDE-FGHJK"} {
		if _, _, ok := ParseCode(bad); ok {
			t.Errorf("ParseCode(%q) accepted", bad)
		}
	}
}
