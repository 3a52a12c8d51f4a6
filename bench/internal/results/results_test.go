package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	const body = "## Flash crowd\n\nfigures\n"
	const section = "<!-- flash:begin -->\n## Flash crowd\n\nfigures\n<!-- flash:end -->\n"
	tests := []struct {
		name, doc, want string
		err             bool
	}{
		{name: "empty file", doc: "", want: section},
		{name: "appended after a final newline, with a blank line",
			doc: "# Results\n\ntext\n", want: "# Results\n\ntext\n\n" + section},
		{name: "appended after a blank line, without another",
			doc: "# Results\n\n", want: "# Results\n\n" + section},
		{name: "appended to a file without a final newline",
			doc: "# Results", want: "# Results\n\n" + section},
		{name: "replaced in the middle, the rest untouched",
			doc:  "# Results\n\n<!-- flash:begin -->\nold\nfigures\n<!-- flash:end -->\n\n<!-- scale:begin -->\nscale\n<!-- scale:end -->\n",
			want: "# Results\n\n" + section + "\n<!-- scale:begin -->\nscale\n<!-- scale:end -->\n"},
		{name: "replaced at the end of a file without a final newline",
			doc: "a\n<!-- flash:begin -->\nold\n<!-- flash:end -->", want: "a\n" + strings.TrimSuffix(section, "\n")},
		{name: "markers with spaces around them",
			doc: "a\n  <!-- flash:begin -->  \nold\n<!-- flash:end -->\nb\n", want: "a\n" + section + "b\n"},
		{name: "CRLF lines around it are kept",
			doc: "a\r\n<!-- flash:begin -->\r\nold\r\n<!-- flash:end -->\r\nb\r\n", want: "a\r\n" + section + "b\r\n"},
		{name: "another section's markers are not ours",
			doc: "<!-- scale:begin -->\nx\n<!-- scale:end -->\n", want: "<!-- scale:begin -->\nx\n<!-- scale:end -->\n\n" + section},
		{name: "a marker inside a line is not a marker",
			doc: "see <!-- flash:begin --> here\n", want: "see <!-- flash:begin --> here\n\n" + section},
		{name: "begin without end", doc: "a\n<!-- flash:begin -->\nold\n", err: true},
		{name: "end without begin", doc: "a\n<!-- flash:end -->\n", err: true},
		{name: "end before begin", doc: "<!-- flash:end -->\nx\n<!-- flash:begin -->\n", err: true},
		{name: "twice", doc: "<!-- flash:begin -->\n<!-- flash:end -->\n<!-- flash:begin -->\n<!-- flash:end -->\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceSection(tt.doc, "flash", body)
			if tt.err {
				if err == nil {
					t.Errorf("no error; got\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			// Writing the same section again changes nothing.
			again, err := ReplaceSection(got, "flash", body)
			if err != nil || again != got {
				t.Errorf("a second replacement changed the document (%v):\n%q", err, again)
			}
		})
	}
}

func TestWithHeader(t *testing.T) {
	const sec = "<!-- intake:begin -->\nx\n<!-- intake:end -->\n"
	tests := []struct{ name, doc, want string }{
		{"empty file", "", Header},
		{"blank file", "\n\n", Header},
		{"a section first", sec, Header + "\n" + sec},
		{"blank lines, then a section", "\n\n" + sec, Header + "\n" + sec},
		{"a stray end marker first", "<!-- chaos:end -->\n", Header + "\n<!-- chaos:end -->\n"},
		{"a header of its own is kept", "# Ours\n\nedited by hand\n\n" + sec, "# Ours\n\nedited by hand\n\n" + sec},
		{"text without sections is kept", "notes\n", "notes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withHeader(tt.doc); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := WriteSection(path, "scale", "one\n"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "flash", "two\n"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "scale", "three\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := Header + "\n<!-- scale:begin -->\nthree\n<!-- scale:end -->\n\n<!-- flash:begin -->\ntwo\n<!-- flash:end -->\n"
	if string(b) != want {
		t.Errorf("got\n%q\nwant\n%q", b, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", st.Mode(), err)
	}

	broken := "keep me\n<!-- flash:begin -->\n"
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "flash", "x\n"); err == nil {
		t.Error("a file with only a begin marker: no error")
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Errorf("the file was changed on error: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".results-*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}
