package drafts

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzParseSections(f *testing.F) {
	seeds := []string{
		"",
		" \n\u3000\r\n",
		"某市管理办法（征求意见稿）\n\n第一章　总　　则\n\n第一条　为了加强管理，制定本办法。\n第二条本办法适用于本市。\n第二章　附则\n第三条　有下列情形之一的：\n（一）甲；\n（二）乙。\n",
		"第一节 一般规定\n第1条 内容。\n第一百零三条\n第十二条\u3000标题\n",
		"为落实部署，制定本方案。\n一、总体要求\n（一）指导思想。\n(二)工作目标\n1.到2025年。\n2．到2027年：\n(1)覆盖率；\n（2）满意度。\n十一、附则\n（六十五）最后一项\n",
		"①子\n②丑\n⑴寅\n⒈卯\n㉑辰\n㊿巳\n１．午\n一．未\n二.申\n",
		"1.5倍\n2022年\n2022.\n(2022)\n1、2项\n一是\n十分\n二〇二二、\n第十五、二十一条\n第二十八至三十一条\n第二条规定的\n第二章总则\n",
		"一、甲\n1.子\n1.丑\n一、乙\n1.寅\n",
		"（一）甲\n一、乙\n（二）丙\n1.丁\n二、戊\n",
		"一、总则\n第一条　甲。\n（一）子\n第二章　附则\n第二条　乙。\n",
		"\uFEFF一、\xfe标题\n\xff（一）子\n第\xff条\n\xe4\n\xb8\xad\n",
		"前言\r\n一、甲\r\n二、乙\r三、丙\r\n",
		"第\n第一\n第一条\n（\n（一\n（一）\n1\n1.\n一\n一、\n",
		"一百零" + "、\n" + "九千九百九十九、\n" + "一千零一十、\n" + "第九九九九条\n",
		"\u3000\u3000一、" + strings.Repeat("长", 41) + "\n\t(1)" + strings.Repeat("短", 40) + "\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := ParseSections(text)

		var joined strings.Builder
		for _, s := range got {
			joined.WriteString(s.Text)
		}
		if w, g := withoutSpace(text), withoutSpace(joined.String()); w != g {
			t.Fatalf("sections lose text:\n got %q\nwant %q", g, w)
		}

		seen := make(map[string]bool, len(got))
		for i, s := range got {
			if s.Anchor == "" || seen[s.Anchor] {
				t.Fatalf("section %d: empty or repeated anchor %q", i, s.Anchor)
			}
			seen[s.Anchor] = true
			for _, c := range []byte(s.Anchor) {
				if c <= ' ' || c >= 0x7f {
					t.Fatalf("section %d: anchor %q is not printable ASCII", i, s.Anchor)
				}
			}
			if s.Level < 0 || (s.Level == 0) != (s.Label == "") || (s.Label == "") != (s.Anchor == "preamble") {
				t.Fatalf("section %d: level %d, label %q, anchor %q", i, s.Level, s.Label, s.Anchor)
			}
			if s.Label == "" && i != 0 {
				t.Fatalf("section %d has no label but is not the first", i)
			}
			if s.Label != "" && !strings.HasPrefix(strings.TrimLeftFunc(s.Text, isBlank), s.Label) {
				t.Fatalf("section %d: text %q does not start with its label %q", i, s.Text, s.Label)
			}
			if strings.TrimFunc(s.Text, unicode.IsSpace) == "" {
				t.Fatalf("section %d: blank text %q", i, s.Text)
			}
			if !utf8.ValidString(s.Heading) || utf8.RuneCountInString(s.Heading) > maxHeadingRunes {
				t.Fatalf("section %d: heading %q", i, s.Heading)
			}
		}

		again := ParseSections(text)
		for i := range got {
			if got[i] != again[i] {
				t.Fatalf("section %d differs between two parses: %+v then %+v", i, got[i], again[i])
			}
		}
	})
}
