package drafts

// Section is one part of a draft's text that a citizen can comment on.
type Section struct {
	// Anchor is stable for the same text: comments refer to it, and it is the
	// fragment in the draft page's URL. ASCII, unique within the draft.
	Anchor string `json:"anchor"`
	// Label is the number as written: "第三条", "一、", "（二）", "1.", "(3)".
	// Empty for the text before the first numbered part (the preamble).
	Label string `json:"label"`
	// Heading is the rest of the label's line when that line is a title
	// ("总体要求" after "一、"); empty when the line is running text.
	Heading string `json:"heading"`
	// Text is the section's text as written, its label line included.
	Text string `json:"text"`
	// Level is the nesting depth, 1 for the outermost numbering scheme in use.
	Level int `json:"level"`
}
