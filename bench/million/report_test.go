package main

import "testing"

func TestReplaceSection(t *testing.T) {
	sec := sectionBegin + "\nnew\n" + sectionEnd + "\n"
	for _, tt := range []struct{ doc, want string }{
		{"", sec},
		{"# Results\n\nintake\n", "# Results\n\nintake\n\n" + sec},
		{"# Results\nno newline", "# Results\nno newline\n\n" + sec},
		{"# R\n\n" + sectionBegin + "\nold\nold\n" + sectionEnd + "\n\n## after\n", "# R\n\n" + sectionBegin + "\nnew\n" + sectionEnd + "\n\n## after\n"},
	} {
		if got := replaceSection(tt.doc, sec); got != tt.want {
			t.Errorf("replaceSection(%q) =\n%q\nwant\n%q", tt.doc, got, tt.want)
		}
	}
}
