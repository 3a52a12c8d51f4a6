package drafts

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseSections(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Section
	}{
		{
			name: "rule with chapters, articles and items",
			text: "某市电动自行车管理办法（征求意见稿）\n\n" +
				"第一章　总　　则\n\n" +
				"第一条　为了加强电动自行车管理，制定本办法。\n\n" +
				"第二条　本办法适用于本市行政区域。\n" +
				"第二章　登记管理\n" +
				"第三条　有下列情形之一的，不予登记：\n" +
				"（一）未经认证的；\n" +
				"（二）改装的。\n" +
				"第四条本办法自2025年1月1日起施行。\n" +
				"第三条规定的情形，不予登记。\n",
			want: []Section{
				{Anchor: "preamble", Text: "某市电动自行车管理办法（征求意见稿）\n\n"},
				{Anchor: "ch1", Label: "第一章", Heading: "总　　则", Level: 1,
					Text: "第一章　总　　则\n\n"},
				{Anchor: "ch1-art1", Label: "第一条", Level: 2,
					Text: "第一条　为了加强电动自行车管理，制定本办法。\n\n"},
				{Anchor: "ch1-art2", Label: "第二条", Level: 2,
					Text: "第二条　本办法适用于本市行政区域。\n"},
				{Anchor: "ch2", Label: "第二章", Heading: "登记管理", Level: 1,
					Text: "第二章　登记管理\n"},
				{Anchor: "ch2-art3", Label: "第三条", Level: 2,
					Text: "第三条　有下列情形之一的，不予登记：\n"},
				{Anchor: "ch2-art3-i1", Label: "（一）", Level: 3,
					Text: "（一）未经认证的；\n"},
				{Anchor: "ch2-art3-i2", Label: "（二）", Level: 3,
					Text: "（二）改装的。\n"},
				{Anchor: "ch2-art4", Label: "第四条", Level: 2,
					Text: "第四条本办法自2025年1月1日起施行。\n第三条规定的情形，不予登记。\n"},
			},
		},
		{
			name: "rule with sections between chapters and articles, Arabic article numbers",
			text: "第一章 总则\n第一节 一般规定\n第1条 内容。\n第2条\n第二节 特别规定\n第3条 内容。\n",
			want: []Section{
				{Anchor: "ch1", Label: "第一章", Heading: "总则", Level: 1, Text: "第一章 总则\n"},
				{Anchor: "ch1-s1", Label: "第一节", Heading: "一般规定", Level: 2, Text: "第一节 一般规定\n"},
				{Anchor: "ch1-s1-art1", Label: "第1条", Level: 3, Text: "第1条 内容。\n"},
				{Anchor: "ch1-s1-art2", Label: "第2条", Level: 3, Text: "第2条\n"},
				{Anchor: "ch1-s2", Label: "第二节", Heading: "特别规定", Level: 2, Text: "第二节 特别规定\n"},
				{Anchor: "ch1-s2-art3", Label: "第3条", Level: 3, Text: "第3条 内容。\n"},
			},
		},
		{
			name: "plan with 一、 （一） 1. (1)",
			text: "为贯彻落实有关部署，制定本方案。\n" +
				"一、总体要求\n" +
				"（一）指导思想。坚持问题导向。\n" +
				"（二）工作目标\n" +
				"1.到2025年，基本建成服务体系。\n" +
				"2.到2027年：\n" +
				"(1)覆盖率达到90%；\n" +
				"(2)满意度提升1.5倍。\n" +
				"二、主要任务\n" +
				"（一）完善机制\n" +
				"1、建立台账。\n" +
				"　　各区按月报送。\n",
			want: []Section{
				{Anchor: "preamble", Text: "为贯彻落实有关部署，制定本方案。\n"},
				{Anchor: "p1", Label: "一、", Heading: "总体要求", Level: 1, Text: "一、总体要求\n"},
				{Anchor: "p1-i1", Label: "（一）", Level: 2, Text: "（一）指导思想。坚持问题导向。\n"},
				{Anchor: "p1-i2", Label: "（二）", Heading: "工作目标", Level: 2, Text: "（二）工作目标\n"},
				{Anchor: "p1-i2-n1", Label: "1.", Level: 3, Text: "1.到2025年，基本建成服务体系。\n"},
				{Anchor: "p1-i2-n2", Label: "2.", Level: 3, Text: "2.到2027年：\n"},
				{Anchor: "p1-i2-n2-k1", Label: "(1)", Level: 4, Text: "(1)覆盖率达到90%；\n"},
				{Anchor: "p1-i2-n2-k2", Label: "(2)", Level: 4, Text: "(2)满意度提升1.5倍。\n"},
				{Anchor: "p2", Label: "二、", Heading: "主要任务", Level: 1, Text: "二、主要任务\n"},
				{Anchor: "p2-i1", Label: "（一）", Heading: "完善机制", Level: 2, Text: "（一）完善机制\n"},
				{Anchor: "p2-i1-n1", Label: "1、", Level: 3, Text: "1、建立台账。\n　　各区按月报送。\n"},
			},
		},
		{
			name: "full-width and half-width parentheses are one scheme each",
			text: "（一）甲\n(二)乙\n（3）丙\n(4）丁\n（五)戊\n",
			want: []Section{
				{Anchor: "i1", Label: "（一）", Heading: "甲", Level: 1, Text: "（一）甲\n"},
				{Anchor: "i2", Label: "(二)", Heading: "乙", Level: 1, Text: "(二)乙\n"},
				{Anchor: "i2-k3", Label: "（3）", Heading: "丙", Level: 2, Text: "（3）丙\n"},
				{Anchor: "i2-k4", Label: "(4）", Heading: "丁", Level: 2, Text: "(4）丁\n"},
				{Anchor: "i5", Label: "（五)", Heading: "戊", Level: 1, Text: "（五)戊\n"},
			},
		},
		{
			name: "full-width digits and dots, 一．, circled and enclosed numbers",
			text: "一．总则\n１．甲\n①子\n②丑\n⑴寅\n⒉乙\n二.附则\n",
			want: []Section{
				{Anchor: "p1", Label: "一．", Heading: "总则", Level: 1, Text: "一．总则\n"},
				{Anchor: "p1-n1", Label: "１．", Heading: "甲", Level: 2, Text: "１．甲\n"},
				{Anchor: "p1-n1-c1", Label: "①", Heading: "子", Level: 3, Text: "①子\n"},
				{Anchor: "p1-n1-c2", Label: "②", Heading: "丑", Level: 3, Text: "②丑\n"},
				{Anchor: "p1-n1-c2-k1", Label: "⑴", Heading: "寅", Level: 4, Text: "⑴寅\n"},
				{Anchor: "p1-n2", Label: "⒉", Heading: "乙", Level: 2, Text: "⒉乙\n"},
				{Anchor: "p2", Label: "二.", Heading: "附则", Level: 1, Text: "二.附则\n"},
			},
		},
		{
			name: "legal schemes nest in their order where the first of them appears",
			text: "一、总则\n第一条　甲。\n（一）子\n第二章　附则\n第二条　乙。\n二、其他\n",
			want: []Section{
				{Anchor: "p1", Label: "一、", Heading: "总则", Level: 1, Text: "一、总则\n"},
				{Anchor: "p1-art1", Label: "第一条", Level: 3, Text: "第一条　甲。\n"},
				{Anchor: "p1-art1-i1", Label: "（一）", Heading: "子", Level: 4, Text: "（一）子\n"},
				{Anchor: "p1-ch2", Label: "第二章", Heading: "附则", Level: 2, Text: "第二章　附则\n"},
				{Anchor: "p1-ch2-art2", Label: "第二条", Level: 3, Text: "第二条　乙。\n"},
				{Anchor: "p2", Label: "二、", Heading: "其他", Level: 1, Text: "二、其他\n"},
			},
		},
		{
			name: "a scheme seen again keeps its level",
			text: "（一）甲\n一、乙\n（二）丙\n1.丁\n二、戊\n",
			want: []Section{
				{Anchor: "i1", Label: "（一）", Heading: "甲", Level: 1, Text: "（一）甲\n"},
				{Anchor: "i1-p1", Label: "一、", Heading: "乙", Level: 2, Text: "一、乙\n"},
				{Anchor: "i2", Label: "（二）", Heading: "丙", Level: 1, Text: "（二）丙\n"},
				{Anchor: "i2-n1", Label: "1.", Heading: "丁", Level: 3, Text: "1.丁\n"},
				{Anchor: "i2-p2", Label: "二、", Heading: "戊", Level: 2, Text: "二、戊\n"},
			},
		},
		{
			name: "duplicate numbers get suffixes, and their children follow them",
			text: "一、甲\n1.子\n1.丑\n一、乙\n1.寅\n",
			want: []Section{
				{Anchor: "p1", Label: "一、", Heading: "甲", Level: 1, Text: "一、甲\n"},
				{Anchor: "p1-n1", Label: "1.", Heading: "子", Level: 2, Text: "1.子\n"},
				{Anchor: "p1-n1-2", Label: "1.", Heading: "丑", Level: 2, Text: "1.丑\n"},
				{Anchor: "p1-2", Label: "一、", Heading: "乙", Level: 1, Text: "一、乙\n"},
				{Anchor: "p1-2-n1", Label: "1.", Heading: "寅", Level: 2, Text: "1.寅\n"},
			},
		},
		{
			name: "preamble, then indented labels",
			text: "说明：\n本稿征求意见。\n\n　　一、 背景 \n\t（一）现状。\n",
			want: []Section{
				{Anchor: "preamble", Text: "说明：\n本稿征求意见。\n\n"},
				{Anchor: "p1", Label: "一、", Heading: "背景", Level: 1, Text: "　　一、 背景 \n"},
				{Anchor: "p1-i1", Label: "（一）", Level: 2, Text: "\t（一）现状。\n"},
			},
		},
		{
			name: "blank text before the first label is no preamble",
			text: "\n \u3000\n第一条　内容。",
			want: []Section{
				{Anchor: "art1", Label: "第一条", Level: 1, Text: "第一条　内容。"},
			},
		},
		{
			name: "no numbering at all",
			text: "本通知自发布之日起施行。\n\n请各单位遵照执行。\n",
			want: []Section{
				{Anchor: "preamble", Text: "本通知自发布之日起施行。\n\n请各单位遵照执行。\n"},
			},
		},
		{
			name: "empty",
			text: "",
			want: nil,
		},
		{
			name: "blank",
			text: " \n\u3000\t\r\n",
			want: nil,
		},
		{
			name: "false positives stay in the section before",
			text: "第一条　倍数。\n" +
				"1.5倍以上的，从重处罚。\n" +
				"2022年起施行。\n" +
				"2022.01起施行。\n" +
				"2022. 年度\n" +
				"(2022)年度\n" +
				"1、2项除外。\n" +
				"一是加强领导。\n" +
				"十分重要。\n" +
				"二〇二二、年\n" +
				"第十五、二十一条。\n" +
				"第二十八至三十一条。\n" +
				"第二条规定的情形除外。\n" +
				"第二条的规定。\n" +
				"第二条第二款。\n" +
				"第五条适用。\n" +
				"第二章总则\n" +
				"第一百零三条是引用\n" +
				"第2条 内容。\n",
			want: []Section{
				{Anchor: "art1", Label: "第一条", Level: 1, Text: "第一条　倍数。\n" +
					"1.5倍以上的，从重处罚。\n" +
					"2022年起施行。\n" +
					"2022.01起施行。\n" +
					"2022. 年度\n" +
					"(2022)年度\n" +
					"1、2项除外。\n" +
					"一是加强领导。\n" +
					"十分重要。\n" +
					"二〇二二、年\n" +
					"第十五、二十一条。\n" +
					"第二十八至三十一条。\n" +
					"第二条规定的情形除外。\n" +
					"第二条的规定。\n" +
					"第二条第二款。\n" +
					"第五条适用。\n" +
					"第二章总则\n" +
					"第一百零三条是引用\n"},
				{Anchor: "art2", Label: "第2条", Level: 1, Text: "第2条 内容。\n"},
			},
		},
		{
			name: "large Chinese numbers",
			text: "第一百零二条　甲。\n第一百零三条乙。\n第一百一十条\u3000丙\n第二百条",
			want: []Section{
				{Anchor: "art102", Label: "第一百零二条", Level: 1, Text: "第一百零二条　甲。\n"},
				{Anchor: "art103", Label: "第一百零三条", Level: 1, Text: "第一百零三条乙。\n"},
				{Anchor: "art110", Label: "第一百一十条", Heading: "丙", Level: 1, Text: "第一百一十条\u3000丙\n"},
				{Anchor: "art200", Label: "第二百条", Level: 1, Text: "第二百条"},
			},
		},
		{
			name: "headings: too long, sentence ends, lines that go on",
			text: "一、" + strings.Repeat("长", 40) + "\n" +
				"二、" + strings.Repeat("长", 41) + "\n" +
				"三、要求！\n" +
				"四、包括：\n" +
				"五、甲，\n" +
				"六、Why?\n" +
				"七、\n",
			want: []Section{
				{Anchor: "p1", Label: "一、", Heading: strings.Repeat("长", 40), Level: 1, Text: "一、" + strings.Repeat("长", 40) + "\n"},
				{Anchor: "p2", Label: "二、", Level: 1, Text: "二、" + strings.Repeat("长", 41) + "\n"},
				{Anchor: "p3", Label: "三、", Level: 1, Text: "三、要求！\n"},
				{Anchor: "p4", Label: "四、", Level: 1, Text: "四、包括：\n"},
				{Anchor: "p5", Label: "五、", Level: 1, Text: "五、甲，\n"},
				{Anchor: "p6", Label: "六、", Level: 1, Text: "六、Why?\n"},
				{Anchor: "p7", Label: "七、", Level: 1, Text: "七、\n"},
			},
		},
		{
			name: "CRLF and CR line ends become LF",
			text: "前言\r\n一、甲\r\n二、乙\r三、丙\r\n",
			want: []Section{
				{Anchor: "preamble", Text: "前言\n"},
				{Anchor: "p1", Label: "一、", Heading: "甲", Level: 1, Text: "一、甲\n"},
				{Anchor: "p2", Label: "二、", Heading: "乙", Level: 1, Text: "二、乙\n"},
				{Anchor: "p3", Label: "三、", Heading: "丙", Level: 1, Text: "三、丙\n"},
			},
		},
		{
			name: "byte order mark and invalid UTF-8 are kept in Text",
			text: "\uFEFF一、\xfe标题\n\xff（一）子\n第\xff条\n",
			want: []Section{
				{Anchor: "p1", Label: "一、", Heading: "\uFFFD标题", Level: 1, Text: "\uFEFF一、\xfe标题\n\xff（一）子\n第\xff条\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseSections(tt.text)
			checkSections(t, got, tt.want)
			checkNoLoss(t, tt.text, got)
		})
	}
}

// TestParseSectionsRunningItems is the long implementation plan: eleven parts 一、 to
// 十一、 whose items （一） to （六十五） run on from part to part.
func TestParseSectionsRunningItems(t *testing.T) {
	const parts, items = 11, 65
	var b strings.Builder
	b.WriteString("关于实施某某行动的方案\n\n为落实有关要求，制定本方案。\n\n")
	partOf := make(map[int]int) // item -> part it is written under
	item := 1
	for p := 1; p <= parts; p++ {
		fmt.Fprintf(&b, "%s、第%d部分\n\n", chineseNumeral(p), p)
		fmt.Fprintf(&b, "本部分说明%d。\n", p)
		// Six items to a part, five in the last; every other one in half-width
		// parentheses, some indented as pasted from a word processor.
		for n := 0; n < 6 && item <= items; n++ {
			open, closing, indent := "（", "）", ""
			if item%2 == 0 {
				open, closing = "(", ")"
			}
			if item%3 == 0 {
				indent = "\u3000\u3000"
			}
			fmt.Fprintf(&b, "%s%s%s%s任务%d。具体内容%d。\n", indent, open, chineseNumeral(item), closing, item, item)
			partOf[item] = p
			item++
		}
	}
	text := b.String()
	got := ParseSections(text)
	checkNoLoss(t, text, got)

	if len(got) != 1+parts+items {
		t.Fatalf("got %d sections, want %d:\n%s", len(got), 1+parts+items, dumpSections(got))
	}
	if got[0].Anchor != "preamble" || got[0].Level != 0 {
		t.Errorf("first section = %+v, want the preamble", got[0])
	}
	var level1, level2, part, nextItem int
	nextItem = 1
	for i, s := range got[1:] {
		switch s.Level {
		case 1:
			level1++
			part++
			wantLabel := chineseNumeral(part) + "、"
			if s.Label != wantLabel || s.Anchor != fmt.Sprintf("p%d", part) || s.Heading != fmt.Sprintf("第%d部分", part) {
				t.Errorf("section %d = %+v, want part %s", i+1, s, wantLabel)
			}
		case 2:
			level2++
			n := nextItem
			nextItem++
			wantLabel := "（" + chineseNumeral(n) + "）"
			if n%2 == 0 {
				wantLabel = "(" + chineseNumeral(n) + ")"
			}
			wantAnchor := fmt.Sprintf("p%d-i%d", partOf[n], n)
			if s.Label != wantLabel || s.Anchor != wantAnchor || s.Heading != "" {
				t.Errorf("section %d = %+v, want label %s anchor %s", i+1, s, wantLabel, wantAnchor)
			}
			if part != partOf[n] {
				t.Errorf("item %d comes after part %d, want after part %d", n, part, partOf[n])
			}
			if !strings.HasSuffix(s.Text, fmt.Sprintf("任务%d。具体内容%d。\n", n, n)) {
				t.Errorf("item %d text = %q", n, s.Text)
			}
		default:
			t.Errorf("section %d = %+v, want level 1 or 2", i+1, s)
		}
	}
	if level1 != parts || level2 != items {
		t.Errorf("got %d level-1 and %d level-2 sections, want %d and %d", level1, level2, parts, items)
	}
}

// TestParseSectionsLong checks that a draft of the largest size accepted parses
// whole and quickly; BenchmarkParseSections measures how quickly.
func TestParseSectionsLong(t *testing.T) {
	text := longDraft(maxText)
	got := ParseSections(text)
	checkNoLoss(t, text, got)
	checkAnchors(t, got)
	if len(got) < 1000 {
		t.Errorf("got %d sections from a long draft, want many", len(got))
	}
}

func BenchmarkParseSections(b *testing.B) {
	text := longDraft(maxText)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		ParseSections(text)
	}
}

// longDraft is a rule of at least runes characters with every scheme in use.
func longDraft(runes int) string {
	var b strings.Builder
	n, article := 0, 0
	write := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		n += utf8.RuneCountInString(s)
		b.WriteString(s)
	}
	for ch := 1; n < runes; ch++ {
		write("第%s章　第%d章的标题\n", chineseNumeral(ch), ch)
		for a := 0; a < 10 && n < runes; a++ {
			article++
			write("第%s条　本条规定了某一事项，具体包括下列内容，1.5倍以内的按照规定执行：\n", chineseNumeral(article))
			for i := 1; i <= 4; i++ {
				write("（%s）第%d项的内容；\n%d.细目；\n(%d)子目；\n%c小目。\n", chineseNumeral(i), i, i, i, '①'+rune(i-1))
			}
		}
	}
	return b.String()
}

func TestParseChineseNumeral(t *testing.T) {
	valid := []struct {
		in   string
		want int
	}{
		{"〇", 0}, {"零", 0}, {"一", 1}, {"两", 2}, {"九", 9},
		{"十", 10}, {"十一", 11}, {"十二", 12}, {"一十二", 12}, {"二十", 20}, {"六十五", 65},
		{"九十九", 99}, {"一百", 100}, {"两百", 200}, {"一百零三", 103}, {"一百〇三", 103},
		{"一百一十", 110}, {"一百十", 110}, {"一百一十一", 111}, {"二百五十", 250},
		{"一千", 1000}, {"一千零一", 1001}, {"一千零一十", 1010}, {"一千零十", 1010},
		{"一千零三十", 1030}, {"一千一百", 1100}, {"两千零二十五", 2025}, {"九千九百九十九", 9999},
	}
	for _, tt := range valid {
		if got, ok := parseChineseNumeral(tt.in); !ok || got != tt.want {
			t.Errorf("parseChineseNumeral(%q) = %d, %v; want %d, true", tt.in, got, ok, tt.want)
		}
	}
	invalid := []string{
		"", "一二", "二〇二二", "十十", "十百", "百", "千", "零一", "零零", "一百零",
		"一百三", "二十零", "一百零十", "一千零三百", "一千零零一", "万", "十万", "abc", "1", "一a",
	}
	for _, in := range invalid {
		if got, ok := parseChineseNumeral(in); ok {
			t.Errorf("parseChineseNumeral(%q) = %d, true; want false", in, got)
		}
	}
	for n := 0; n <= 9999; n++ {
		s := chineseNumeral(n)
		if got, ok := parseChineseNumeral(s); !ok || got != n {
			t.Fatalf("parseChineseNumeral(%q) = %d, %v; want %d, true", s, got, ok, n)
		}
	}
}

// chineseNumeral writes n, from 0 to 9999, as drafts do: 十二, 一百零三, 一千零一十.
func chineseNumeral(n int) string {
	if n == 0 {
		return "〇"
	}
	digits := []rune("〇一二三四五六七八九")
	units := []struct {
		value int
		name  string
	}{{1000, "千"}, {100, "百"}, {10, "十"}, {1, ""}}
	var b strings.Builder
	started, zero := false, false
	for _, u := range units {
		d := n / u.value % 10
		if d == 0 {
			zero = zero || started
			continue
		}
		if zero {
			b.WriteString("零")
			zero = false
		}
		if !(u.value == 10 && d == 1 && !started) {
			b.WriteRune(digits[d])
		}
		b.WriteString(u.name)
		started = true
	}
	return b.String()
}

func checkSections(t *testing.T, got, want []Section) {
	t.Helper()
	if len(got) == len(want) {
		same := true
		for i := range got {
			same = same && got[i] == want[i]
		}
		if same {
			return
		}
	}
	t.Errorf("got sections:\n%s\nwant:\n%s", dumpSections(got), dumpSections(want))
}

func dumpSections(ss []Section) string {
	var b strings.Builder
	for i, s := range ss {
		fmt.Fprintf(&b, "  %d: anchor=%q label=%q heading=%q level=%d text=%q\n", i, s.Anchor, s.Label, s.Heading, s.Level, s.Text)
	}
	return b.String()
}

// checkNoLoss checks that the sections hold all of text but whitespace, in order.
func checkNoLoss(t *testing.T, text string, got []Section) {
	t.Helper()
	var joined strings.Builder
	for _, s := range got {
		joined.WriteString(s.Text)
	}
	if w, g := withoutSpace(text), withoutSpace(joined.String()); w != g {
		t.Errorf("sections lose text:\n got %q\nwant %q", g, w)
	}
}

// withoutSpace drops the Unicode whitespace from s and keeps every other byte,
// invalid UTF-8 included.
func withoutSpace(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) { // an invalid byte decodes as RuneError, no space
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// checkAnchors checks that anchors are unique, non-empty, printable ASCII, and that
// levels are 0 exactly for the preamble.
func checkAnchors(t *testing.T, got []Section) {
	t.Helper()
	seen := make(map[string]int, len(got))
	for i, s := range got {
		if j, dup := seen[s.Anchor]; dup {
			t.Errorf("sections %d and %d share anchor %q", j, i, s.Anchor)
		}
		seen[s.Anchor] = i
		if s.Anchor == "" {
			t.Errorf("section %d has no anchor", i)
		}
		for _, c := range []byte(s.Anchor) {
			if c <= ' ' || c >= 0x7f {
				t.Errorf("section %d anchor %q is not printable ASCII", i, s.Anchor)
				break
			}
		}
		if s.Level < 0 || (s.Level == 0) != (s.Label == "") {
			t.Errorf("section %d: level %d with label %q", i, s.Level, s.Label)
		}
	}
}
