// Package notify owns the digest a drafting bureau receives when a comment window
// closes (its composition, templates and CSV), the mailers that deliver it, and the
// Scheduler that sends it exactly once per recipient, however many replicas run.
package notify

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"consult/comments"
	"consult/drafts"
)

// Audience decides what personal data a digest shows.
type Audience int

const (
	// Bureau is the drafting bureau's copy: every name and contact, and whether
	// each commenter consented to publishing the name.
	Bureau Audience = iota
	// Public is a copy that may be published: a name only with the commenter's
	// separate consent (PIPL art. 25), else masked ("张*") or 匿名; never a contact
	// (PIPL art. 51).
	Public
)

// Public reports whether the digest is the public copy.
func (d *Digest) Public() bool { return d.Audience == Public }

func (a Audience) String() string {
	if a == Public {
		return "public"
	}
	return "bureau"
}

// Options shape a digest.
type Options struct {
	Audience Audience
	// Interim marks a digest sent while the window may still be open.
	Interim bool
	// Location is the zone times are shown in; nil means Asia/Shanghai.
	Location *time.Location
	// BaseURL is the public site ("https://consult.example.gov.cn"); the digest
	// links to the draft's page under it (Paths.Draft). Empty, or no
	// Paths.Draft, means no links.
	BaseURL string
	Paths   Paths
	// GeneratedAt is when the digest was made, shown in its footer.
	GeneratedAt time.Time
	// Until is the position of the newest entry of the draft's record the digest
	// covers ("<ms>-<seq>", as store's Head gives it; "0-0" for none), shown with
	// the totals. Empty means not shown.
	Until string
	// Dir is where the comments wait on disk while the digest is built (see
	// spill); empty means os.TempDir(). Avoid a tmpfs: it would hold them in memory.
	Dir string
}

// Source calls fn with every comment a digest covers, in the order received,
// and stops at fn's first error: a store's Each with its draft and range bound.
type Source func(fn func(comments.Comment) error) error

// SliceSource is a Source over comments already in memory (tests, tools).
func SliceSource(cs []comments.Comment) Source {
	return func(fn func(comments.Comment) error) error {
		for _, c := range cs {
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	}
}

// Digest is every comment on a draft arranged for reading, with personal data
// already reduced to what the audience may see: the renderers cannot leak what
// Build did not put in. The comments themselves wait on local disk, grouped by
// section, until the digest is rendered (WriteText, WriteHTML, WriteCSV, any
// number of times); Close deletes them.
type Digest struct {
	DraftID  string
	Title    string
	Bureau   string
	Kind     drafts.Kind
	Audience Audience
	Interim  bool
	// OpensAt, ClosesAt and GeneratedAt are in the digest's location.
	OpensAt     time.Time
	ClosesAt    time.Time
	GeneratedAt time.Time
	Zone        string // the location's name: "Asia/Shanghai"
	DraftURL    string // empty without a BaseURL
	// Until is the position of the newest entry covered ("0-0": none; empty: not
	// shown) and UntilAt when Redis received it, in the digest's location (zero
	// for none).
	Until   string
	UntilAt time.Time

	Total      int
	Categories []CategoryCount
	// Groups count the comments by section: whole-draft comments first, then the
	// draft's sections in their order, then comments on anchors the draft does not
	// have, in the order of their first comment (kept, never dropped: every
	// receipt must appear). Sections without comments are left out.
	Groups []Group

	// firstEntry and lastEntry are the stream positions of the first and last
	// comment shown in the order received ("" for none).
	firstEntry, lastEntry string

	loc   *time.Location
	spill *spill
}

// CategoryCount is how many comments came from one category of commenter.
type CategoryCount struct {
	Category comments.Category
	Label    string
	Count    int
}

// Group is the comments on one section, in the order received.
type Group struct {
	Anchor string // "" for the whole draft
	Label  string // "第三条"; empty for the whole draft and a preamble
	Title  string // what a reader sees: "第三条 总体要求", "全文 Whole draft"
	URL    string // the section on the draft's page; empty without a BaseURL
	Count  int

	file int // its spill file
}

// Entry is one comment as the audience may see it.
type Entry struct {
	N             int // 1, 2, … through the whole digest, in the order shown
	Code          string
	ReceivedAt    time.Time // in the digest's location
	Category      comments.Category
	CategoryLabel string
	// Name is what to show: the name (Bureau), or the name with consent, a masked
	// name or 匿名 (Public).
	Name string
	// RawName is the name as given, for the Bureau only; "" in a Public digest.
	RawName string
	// Contact is set only in a Bureau digest.
	Contact     string
	PublishName bool
	Body        string
	SHA256      string
	// Duplicate marks a text the same client had already sent on the draft.
	Duplicate bool
}

// Build reads a draft's comments once from src and arranges them into a digest
// for the audience in o. Its memory does not grow with the number of comments:
// they are written to disk under o.Dir, one file per section, and only the
// counts stay in memory. Comments are shown in the order src gives them, which
// is the order Redis received them (its stream order, not the received times,
// which a clock step could disorder). The caller must Close the digest.
func Build(d drafts.Draft, src Source, o Options) (*Digest, error) {
	loc := o.Location
	if loc == nil {
		loc = defaultLocation()
	}
	dg := &Digest{
		DraftID:     d.ID,
		Title:       d.Title,
		Bureau:      d.Bureau,
		Kind:        d.Kind,
		Audience:    o.Audience,
		Interim:     o.Interim,
		OpensAt:     d.OpensAt.In(loc),
		ClosesAt:    d.ClosesAt.In(loc),
		GeneratedAt: o.GeneratedAt.In(loc),
		Zone:        loc.String(),
		Until:       o.Until,
		loc:         loc,
	}
	if ms, _, ok := strings.Cut(o.Until, "-"); ok && o.Until != "0-0" {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			dg.UntilAt = time.UnixMilli(n).In(loc)
		}
	}
	if o.BaseURL != "" && o.Paths.Draft != nil {
		dg.DraftURL = strings.TrimRight(o.BaseURL, "/") + o.Paths.Draft(d.ID)
	}
	sp, err := newSpill(o.Dir)
	if err != nil {
		return nil, err
	}
	dg.spill = sp

	// Groups: 0 the whole draft, then the draft's sections, then unknown anchors
	// as they come.
	groups := make([]Group, 0, len(d.Sections)+1)
	groups = append(groups, Group{Title: "全文 Whole draft"})
	index := make(map[string]int, len(d.Sections)+1)
	index[""] = 0
	for _, s := range d.Sections {
		if _, dup := index[s.Anchor]; dup {
			continue
		}
		index[s.Anchor] = len(groups)
		groups = append(groups, Group{Anchor: s.Anchor, Label: s.Label, Title: sectionTitle(s)})
	}
	perCategory := map[comments.Category]int{}
	err = src(func(c comments.Comment) error {
		g, ok := index[c.Section]
		if !ok {
			g = len(groups)
			index[c.Section] = g
			groups = append(groups, Group{Anchor: c.Section, Title: "未知章节 Unknown section: " + c.Section})
		}
		groups[g].Count++
		perCategory[c.Category]++
		dg.Total++
		if dg.firstEntry == "" {
			dg.firstEntry = c.Entry
		}
		dg.lastEntry = c.Entry
		return sp.write(g, entry(c, o.Audience, loc))
	})
	if ferr := sp.finish(); err == nil {
		err = ferr
	}
	if err != nil {
		_ = sp.remove()
		return nil, fmt.Errorf("notify: build digest %s: %w", d.ID, err)
	}

	for _, cat := range comments.Categories {
		dg.Categories = append(dg.Categories, CategoryCount{Category: cat, Label: categoryLabel(cat), Count: perCategory[cat]})
		delete(perCategory, cat)
	}
	var others []comments.Category
	for cat := range perCategory {
		others = append(others, cat)
	}
	slices.SortFunc(others, func(a, b comments.Category) int { return cmp.Compare(a, b) })
	for _, cat := range others {
		dg.Categories = append(dg.Categories, CategoryCount{Category: cat, Label: categoryLabel(cat), Count: perCategory[cat]})
	}
	for i, g := range groups {
		if g.Count == 0 {
			continue
		}
		g.file = i
		if dg.DraftURL != "" {
			g.URL = dg.DraftURL
			if g.Anchor != "" {
				g.URL += "#" + url.PathEscape(g.Anchor)
			}
		}
		dg.Groups = append(dg.Groups, g)
	}
	return dg, nil
}

// Close deletes the comments the digest holds on disk; it may not be rendered
// afterwards.
func (d *Digest) Close() error {
	if d == nil || d.spill == nil {
		return nil
	}
	err := d.spill.remove()
	d.spill = nil
	return err
}

// entries calls fn with every comment of a group, numbered from first, in the
// digest's location.
func (d *Digest) entries(g Group, first int, fn func(Entry) error) error {
	if d.spill == nil {
		return fmt.Errorf("notify: digest %s: rendered after Close", d.DraftID)
	}
	n := first
	return d.spill.each(g.file, func(e Entry) error {
		e.N = n
		n++
		e.ReceivedAt = e.ReceivedAt.In(d.loc)
		e.CategoryLabel = categoryLabel(e.Category)
		return fn(e)
	})
}

func entry(c comments.Comment, a Audience, loc *time.Location) Entry {
	e := Entry{
		Code:          c.Code,
		ReceivedAt:    c.ReceivedAt.In(loc),
		Category:      c.Category,
		CategoryLabel: categoryLabel(c.Category),
		PublishName:   c.PublishName,
		Body:          c.Body,
		SHA256:        c.SHA256,
		Duplicate:     c.Duplicate,
	}
	name := strings.TrimSpace(c.Name)
	switch {
	case a == Bureau:
		e.RawName, e.Contact = c.Name, c.Contact
		e.Name = name
		if name == "" {
			e.Name = "（未留姓名 none given）"
		}
	case name == "":
		e.Name = anonymous
	case c.PublishName:
		e.Name = name
	default:
		e.Name = maskName(name)
	}
	return e
}

const anonymous = "匿名"

// maskName keeps the first character and hides the rest behind one star, so that
// the mask does not tell the name's length either: "张三" and "欧阳修" become
// "张*" and "欧*".
func maskName(name string) string {
	r, _ := utf8.DecodeRuneInString(name)
	if r == utf8.RuneError {
		return anonymous
	}
	return string(r) + "*"
}

func sectionTitle(s drafts.Section) string {
	sep := " "
	// "一、总体要求" and "（一）指导思想" are written without a space.
	if strings.HasSuffix(s.Label, "、") || strings.HasSuffix(s.Label, "）") {
		sep = ""
	}
	t := strings.TrimSpace(s.Label + sep + s.Heading)
	if t == "" {
		return "序言 Preamble"
	}
	return t
}

var categoryLabels = map[comments.Category]string{
	comments.CategoryIndividual:   "个人 Individual",
	comments.CategoryEnterprise:   "企业 Enterprise",
	comments.CategoryOrganization: "社会组织 Organization",
	comments.CategoryExpert:       "专家学者 Expert",
	comments.CategoryPublicBody:   "机关单位 Public body",
	comments.CategoryOther:        "其他 Other",
}

func categoryLabel(c comments.Category) string {
	if l, ok := categoryLabels[c]; ok {
		return l
	}
	if c == "" {
		return "未填 Not given"
	}
	return string(c)
}

// defaultLocation is Asia/Shanghai, or a fixed +08:00 of the same name where the
// system has no zone data (a scratch container): China has kept +08:00 without
// daylight saving since 1991, so the two agree for every date a consultation can
// have, and a digest reads the same on either.
func defaultLocation() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("Asia/Shanghai", 8*60*60)
}

// Subject is the e-mail subject: the draft's title and deadline, marked 中期 for an
// interim digest. A very long title is cut (the body has it whole) so that the
// encoded header stays within one line.
func (d *Digest) Subject() string {
	title := strings.Join(strings.Fields(d.Title), " ")
	if utf8.RuneCountInString(title) > maxSubjectTitle {
		title = string([]rune(title)[:maxSubjectTitle-1]) + "…"
	}
	tag := "【意见汇总】"
	if d.Interim {
		tag = "【意见汇总·中期 Interim】"
	}
	return tag + title + "（截止 " + d.ClosesAt.Format("2006-01-02 15:04") + "）"
}

const maxSubjectTitle = 100
