package comments

import "testing"

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
