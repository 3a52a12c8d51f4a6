package drafts

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseSections splits a draft's text into the sections a citizen can comment on.
//
// A section starts at every line whose first non-blank characters are a part number
// in one of the schemes Chinese drafts use (with its prefix in anchors):
//
//	第一章 第一节 第一条 (also 第1条)    ch, s, art
//	一、 (also 一． 一.)                 p
//	（一） (either parenthesis width)    i
//	1. (also 1． 1、, not 1.5)           n
//	（1） (either parenthesis width), ⑴  k
//	① to ㊿                              c
//
// 第X章 and 第X节 must be followed by a blank or the end of the line; so must 第X条,
// unless it has the next article's number and what follows does not read as a
// reference ("第五条规定的"). Lines are broken at \n, \r\n and \r; blank means any
// Unicode space, plus U+FEFF and U+200B, which copy-paste leaves at line starts.
//
// ParseSections promises:
//   - Concatenating the sections' Text gives back text with every \r\n and \r turned
//     into \n, less the text before the first numbered line when that is all
//     whitespace (unicode.IsSpace). Nothing else is dropped: invalid UTF-8 stays in
//     Text as it was.
//   - Text before the first numbered line, unless all whitespace, is a preamble:
//     Label "", Anchor "preamble", Level 0. Text with no numbered line at all is one
//     preamble section; text that is all whitespace gives no sections.
//   - Levels go by the order in which the schemes first appear, 1 for the first,
//     except that 章, 节 and 条 always nest in that order and take consecutive levels
//     at the place where the first of them appears. A scheme keeps its level to the end.
//   - An anchor is the path of numbers down to the section, each with its scheme's
//     prefix: "ch2-art15", "p3-i14", "p3-i14-n2". A path already taken gets
//     "-2", "-3", and so on, so anchors are ASCII, unique, and depend only on the text.
//   - Heading is the rest of the label's line, trimmed, when that rest is at most 40
//     runes, has no sentence-ending punctuation (。；;！？!?) and does not end in
//     one that carries the sentence on (：:，,、); else "". Invalid UTF-8 in a
//     heading is replaced by U+FFFD.
//   - It runs in time linear in len(text) and does not panic on any input.
func ParseSections(text string) []Section {
	if strings.IndexByte(text, '\r') >= 0 {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
	}

	var marks []marker
	lastArticle := 0
	for start := 0; start < len(text); {
		end := strings.IndexByte(text[start:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += start
		}
		if m, ok := parseMarker(text[start:end], lastArticle); ok {
			if m.scheme == schemeArticle {
				lastArticle = m.num
			}
			m.start = start
			marks = append(marks, m)
		}
		start = end + 1
	}

	var sections []Section
	first := len(text)
	if len(marks) > 0 {
		first = marks[0].start
	}
	if pre := text[:first]; strings.IndexFunc(pre, notSpace) >= 0 {
		sections = make([]Section, 0, len(marks)+1)
		sections = append(sections, Section{Anchor: preambleAnchor, Text: pre})
	}
	if len(marks) == 0 {
		return sections
	}
	if sections == nil {
		sections = make([]Section, 0, len(marks))
	}

	levels := schemeLevels(marks)
	anchors := newAnchorSet(len(marks) + 1)
	anchors.add(preambleAnchor)
	// open holds the anchor of the latest section at each level above the current
	// one; its length is at most the number of schemes.
	type openSection struct {
		level  int
		anchor string
	}
	var open []openSection
	for i, m := range marks {
		level := levels[m.scheme]
		for len(open) > 0 && open[len(open)-1].level >= level {
			open = open[:len(open)-1]
		}
		base := schemePrefix[m.scheme] + strconv.Itoa(m.num)
		if len(open) > 0 {
			// The parent's own anchor, not its path, so that the items under a
			// duplicated "p1-2" become "p1-2-n1" and not duplicates of "p1-n1".
			base = open[len(open)-1].anchor + "-" + base
		}
		anchor := anchors.add(base)
		open = append(open, openSection{level, anchor})

		end := len(text)
		if i+1 < len(marks) {
			end = marks[i+1].start
		}
		sections = append(sections, Section{
			Anchor:  anchor,
			Label:   m.label,
			Heading: m.heading,
			Text:    text[m.start:end],
			Level:   level,
		})
	}
	return sections
}

const (
	preambleAnchor = "preamble"
	// maxHeadingRunes is the longest rest of a label's line that still reads as a title.
	maxHeadingRunes = 40
	// sentenceEnds are the marks that make a label's line running text, not a title.
	sentenceEnds = "。；;！？!?"
	// continuingEnds, at the end of a label's line, show a sentence that goes on.
	continuingEnds = "：:，,、"
	// maxCNNumeralRunes bounds a Chinese numeral: 九千九百九十九 has seven runes.
	maxCNNumeralRunes = 8
	// maxItemDigits bounds 1. and (1), so that years such as "2022." and "(2022)"
	// are not taken for item numbers.
	maxItemDigits = 3
	// maxArticleDigits bounds 第1条.
	maxArticleDigits = 4
)

// scheme is a way of numbering parts. The zero value is no scheme.
type scheme uint8

const (
	schemeNone        scheme = iota
	schemeChapter            // 第一章
	schemeSection            // 第一节
	schemeArticle            // 第一条, 第1条
	schemeCNList             // 一、 一．
	schemeCNParen            // （一） (一)
	schemeArabicList         // 1. 1． 1、 ⒈
	schemeArabicParen        // （1） (1) ⑴
	schemeCircled            // ①
	numSchemes
)

var schemePrefix = [numSchemes]string{
	schemeChapter:     "ch",
	schemeSection:     "s",
	schemeArticle:     "art",
	schemeCNList:      "p",
	schemeCNParen:     "i",
	schemeArabicList:  "n",
	schemeArabicParen: "k",
	schemeCircled:     "c",
}

// legalSchemes nest in this order wherever they appear.
var legalSchemes = [...]scheme{schemeChapter, schemeSection, schemeArticle}

func (s scheme) legal() bool {
	return s == schemeChapter || s == schemeSection || s == schemeArticle
}

// marker is a numbered line.
type marker struct {
	start   int // byte offset of the line in the text
	scheme  scheme
	num     int
	label   string
	heading string
}

// schemeLevels gives each scheme in marks its level: by first appearance, except
// that the legal schemes present take consecutive levels, in their fixed order, at
// the place of the first of them. Placing them as a block, rather than only swapping
// their places, keeps a stray 第一条 before the first 第一章 from pushing every
// scheme seen between the two below the articles.
func schemeLevels(marks []marker) [numSchemes]int {
	var present [numSchemes]bool
	for _, m := range marks {
		present[m.scheme] = true
	}
	var levels [numSchemes]int
	depth := 0
	for _, m := range marks {
		if levels[m.scheme] != 0 {
			continue
		}
		if !m.scheme.legal() {
			depth++
			levels[m.scheme] = depth
			continue
		}
		for _, s := range legalSchemes {
			if present[s] {
				depth++
				levels[s] = depth
			}
		}
	}
	return levels
}

// anchorSet hands out unique anchors.
type anchorSet struct {
	// next is, for an anchor taken, the suffix to try first for its next duplicate,
	// so that a thousand "1." lines at the top level stay linear.
	next map[string]int
}

func newAnchorSet(size int) anchorSet {
	return anchorSet{next: make(map[string]int, size)}
}

// add returns base, or base with the first free suffix "-2", "-3", ... if base is
// taken, and marks the result taken. A suffixed anchor cannot equal a path: every
// path segment starts with a letter, every suffix is digits only.
func (a anchorSet) add(base string) string {
	k, taken := a.next[base]
	if !taken {
		a.next[base] = 2
		return base
	}
	for ; ; k++ {
		s := base + "-" + strconv.Itoa(k)
		if _, taken := a.next[s]; !taken {
			a.next[base] = k + 1
			a.next[s] = 2
			return s
		}
	}
}

// parseMarker reads the part number at the start of line, if there is one.
// lastArticle is the number of the latest 第X条 seen, for articles written
// without a space after them.
func parseMarker(line string, lastArticle int) (marker, bool) {
	rest := line[blankPrefix(line):]
	r, size := utf8.DecodeRuneInString(rest)
	var (
		sc  scheme
		num int
		n   int // bytes of rest that make the label
		ok  bool
	)
	switch {
	case r == '第':
		sc, num, n, ok = legalMarker(rest, size, lastArticle)
	case r == '(' || r == '（':
		sc, num, n, ok = parenMarker(rest, size)
	case digitValue(r) >= 0:
		sc, num, n, ok = arabicListMarker(rest)
	case cnNumeralRune(r):
		sc, num, n, ok = cnListMarker(rest)
	default:
		sc, num, ok = enclosedMarker(r)
		n = size
	}
	if !ok {
		return marker{}, false
	}
	return marker{
		scheme:  sc,
		num:     num,
		label:   rest[:n],
		heading: headingOf(rest[n:]),
	}, true
}

// legalMarker reads 第X章, 第X节 or 第X条; s starts with 第, which is size bytes.
//
// The marker must be followed by a blank or the end of the line, as drafts write
// "第一条　为了……" and "第一章　总　　则". A 第X条 followed directly by text is
// taken too, because pasting often loses the full-width space, but only when it is
// safe: its number must be the next article's (or 1), and the next character must
// not be one that marks a reference in running text, as in "第五条规定的", "第五条的",
// "第五条第二款", "第五条、第六条", "第五条（三）项". A line-wrapped reference that
// passes both tests would be read as the next article: we judged that rarer than
// drafts that lost their spaces. 章 and 节 always need the blank: a title pasted
// without one stays in the section before, which loses nothing.
func legalMarker(s string, size, lastArticle int) (scheme, int, int, bool) {
	num, width, ok := leadingNumber(s[size:], maxArticleDigits)
	if !ok {
		return schemeNone, 0, 0, false
	}
	n := size + width
	r, rsize := utf8.DecodeRuneInString(s[n:])
	var sc scheme
	switch r {
	case '章':
		sc = schemeChapter
	case '节':
		sc = schemeSection
	case '条':
		sc = schemeArticle
	default:
		return schemeNone, 0, 0, false
	}
	n += rsize
	next, _ := utf8.DecodeRuneInString(s[n:])
	switch {
	case n == len(s) || isBlank(next):
	case sc == schemeArticle && (num == lastArticle+1 || num == 1) &&
		next != utf8.RuneError && !strings.ContainsRune(referenceFollowers, next):
	default:
		return schemeNone, 0, 0, false
	}
	return sc, num, n, true
}

// referenceFollowers are the characters that, right after 第X条, show a reference to
// the article rather than the article itself.
const referenceFollowers = "规的第、，,。．.：:；;至到和与及或中所之款项（(〔【“”\"'’」》）)"

// parenMarker reads （一） or （1）, with either width of parenthesis on either side;
// s starts with the opening one, which is size bytes.
func parenMarker(s string, size int) (scheme, int, int, bool) {
	num, width, ok := leadingNumber(s[size:], maxItemDigits)
	if !ok {
		return schemeNone, 0, 0, false
	}
	n := size + width
	r, rsize := utf8.DecodeRuneInString(s[n:])
	if r != ')' && r != '）' {
		return schemeNone, 0, 0, false
	}
	sc := schemeCNParen
	if isArabicStart(s[size:]) {
		sc = schemeArabicParen
	}
	return sc, num, n + rsize, true
}

// arabicListMarker reads 1. or 1． or 1、 at the start of s. A digit right after the
// dot makes it a decimal ("1.5倍"), not a number.
func arabicListMarker(s string) (scheme, int, int, bool) {
	num, n, ok := leadingNumber(s, maxItemDigits)
	if !ok {
		return schemeNone, 0, 0, false
	}
	r, size := utf8.DecodeRuneInString(s[n:])
	if r != '.' && r != '．' && r != '、' {
		return schemeNone, 0, 0, false
	}
	n += size
	if next, _ := utf8.DecodeRuneInString(s[n:]); digitValue(next) >= 0 {
		return schemeNone, 0, 0, false
	}
	return schemeArabicList, num, n, true
}

// cnListMarker reads 一、 or 一． (or 一.) at the start of s. Without the mark a
// leading numeral is just a word: "一是", "十分".
func cnListMarker(s string) (scheme, int, int, bool) {
	num, n, ok := leadingNumber(s, 0)
	if !ok {
		return schemeNone, 0, 0, false
	}
	r, size := utf8.DecodeRuneInString(s[n:])
	if r != '、' && r != '．' && r != '.' {
		return schemeNone, 0, 0, false
	}
	return schemeCNList, num, n + size, true
}

// enclosedMarker reads the one-character numbers of Unicode: ① to ㊿, and ⑴ and ⒈,
// which stand for (1) and 1. and so share their schemes.
func enclosedMarker(r rune) (scheme, int, bool) {
	switch {
	case r >= '①' && r <= '⑳':
		return schemeCircled, int(r-'①') + 1, true
	case r >= '㉑' && r <= '㉟':
		return schemeCircled, int(r-'㉑') + 21, true
	case r >= '㊱' && r <= '㊿':
		return schemeCircled, int(r-'㊱') + 36, true
	case r >= '⑴' && r <= '⒇':
		return schemeArabicParen, int(r-'⑴') + 1, true
	case r >= '⒈' && r <= '⒛':
		return schemeArabicList, int(r-'⒈') + 1, true
	}
	return schemeNone, 0, false
}

// leadingNumber reads the number at the start of s: at most maxDigits Arabic digits
// (ASCII or full-width), or a Chinese numeral. It returns the value and its length
// in bytes. A longer run of digits is no number at all, not a shorter one.
func leadingNumber(s string, maxDigits int) (num, n int, ok bool) {
	if isArabicStart(s) {
		digits := 0
		for n < len(s) {
			r, size := utf8.DecodeRuneInString(s[n:])
			d := digitValue(r)
			if d < 0 {
				break
			}
			digits++
			if digits > maxDigits {
				return 0, 0, false
			}
			num = num*10 + d
			n += size
		}
		return num, n, true
	}
	runes := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !cnNumeralRune(r) {
			break
		}
		runes++
		if runes > maxCNNumeralRunes {
			return 0, 0, false
		}
		n += size
	}
	if n == 0 {
		return 0, 0, false
	}
	num, ok = parseChineseNumeral(s[:n])
	return num, n, ok
}

func isArabicStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return digitValue(r) >= 0
}

// digitValue is the value of an ASCII or full-width digit, or -1.
func digitValue(r rune) int {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0')
	case r >= '０' && r <= '９':
		return int(r - '０')
	}
	return -1
}

func cnNumeralRune(r rune) bool {
	return cnDigitValue(r) >= 0 || cnUnitValue(r) > 0
}

// cnDigitValue is the value of a Chinese digit (两 included), or -1.
func cnDigitValue(r rune) int {
	switch r {
	case '零', '〇':
		return 0
	case '一':
		return 1
	case '二', '两':
		return 2
	case '三':
		return 3
	case '四':
		return 4
	case '五':
		return 5
	case '六':
		return 6
	case '七':
		return 7
	case '八':
		return 8
	case '九':
		return 9
	}
	return -1
}

func cnUnitValue(r rune) int {
	switch r {
	case '十':
		return 10
	case '百':
		return 100
	case '千':
		return 1000
	}
	return 0
}

// parseChineseNumeral converts a Chinese numeral from 〇 (or 零) to 九千九百九十九
// into its value: "十二" 12, "二十" 20, "一百零三" 103, "两百" 200, "一百一十" 110.
// It is strict where a form would be ambiguous or is no numeral: units must fall
// ("十百"), a digit after 百 or 千 needs a 零 before it ("一百三" may mean 103 or
// 130), a 零 must stand for at least one skipped unit ("一百零十"), and strings of
// digits ("二〇二二", the way years are written) are refused.
func parseChineseNumeral(s string) (int, bool) {
	if s == "零" || s == "〇" {
		return 0, true
	}
	total := 0
	digit := -1       // a digit waiting for its unit
	lastUnit := 10000 // units must fall from left to right; 10000 before the first
	skipped := false  // a 零 since the last unit
	for _, r := range s {
		if d := cnDigitValue(r); d == 0 {
			// 零 only stands between a unit of 百 or 千 and what follows it.
			if digit >= 0 || skipped || lastUnit > 1000 || lastUnit < 100 {
				return 0, false
			}
			skipped = true
		} else if d > 0 {
			if digit >= 0 {
				return 0, false
			}
			digit = d
		} else if u := cnUnitValue(r); u > 0 {
			if u >= lastUnit || skipped && u*10 >= lastUnit {
				return 0, false
			}
			switch {
			case digit >= 0:
				total += digit * u
			case u == 10:
				total += 10 // 十二, 一千零十: the 一 is left out
			default:
				return 0, false
			}
			digit, lastUnit, skipped = -1, u, false
		} else {
			return 0, false
		}
	}
	if digit < 0 {
		// Nothing at all, or a 零 with nothing after it.
		return total, lastUnit < 10000 && !skipped
	}
	if lastUnit != 10 && lastUnit != 10000 && !skipped {
		return 0, false
	}
	return total + digit, true
}

// headingOf is the title on a label's line, if the rest of the line reads as one.
func headingOf(rest string) string {
	h := strings.TrimFunc(rest, isBlank)
	if h == "" || strings.ContainsAny(h, sentenceEnds) || utf8.RuneCountInString(h) > maxHeadingRunes {
		return ""
	}
	// "有下列情形之一的，不予登记：" has no sentence end but is the start of a
	// sentence that goes on below, not a title.
	if last, _ := utf8.DecodeLastRuneInString(h); strings.ContainsRune(continuingEnds, last) {
		return ""
	}
	// Text keeps invalid bytes as they were; a heading is only for display.
	return strings.ToValidUTF8(h, "\uFFFD")
}

// blankPrefix is the length in bytes of the blanks at the start of s.
func blankPrefix(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !isBlank(r) {
			break
		}
		n += size
	}
	return n
}

// isBlank tells the characters that may stand before a part number: Unicode spaces
// (U+3000 among them), and the byte order mark and zero-width space that pasted
// text brings along.
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u200B'
}

func notSpace(r rune) bool { return !unicode.IsSpace(r) }
