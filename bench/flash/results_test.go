package main

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
			got, err := replaceSection(tt.doc, "flash", body)
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
			again, err := replaceSection(got, "flash", body)
			if err != nil || again != got {
				t.Errorf("a second replacement changed the document (%v):\n%q", err, again)
			}
		})
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := writeSection(path, "scale", "one\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "flash", "two\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "scale", "three\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "<!-- scale:begin -->\nthree\n<!-- scale:end -->\n\n<!-- flash:begin -->\ntwo\n<!-- flash:end -->\n"
	if string(b) != want {
		t.Errorf("got\n%q\nwant\n%q", b, want)
	}
	broken := "keep me\n<!-- flash:begin -->\n"
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "flash", "x\n"); err == nil {
		t.Error("a file with only a begin marker: no error")
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Errorf("the file was changed on error: %q", b)
	}
}

func TestParseProcStatus(t *testing.T) {
	const status = "Name:\tconsultd\nVmPeak:\t 1300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   65432 kB\nThreads:\t12\n"
	got := parseProcStatus(status)
	if want := (procStatus{RSSKB: 65432, HWMKB: 81234, Threads: 12}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestMissing(t *testing.T) {
	n, ex := missing([]string{"a", "b", "c", "d"}, []string{"b", "x", "d"}, 1)
	if n != 2 || len(ex) != 1 || ex[0] != "a" {
		t.Errorf("missing = %d %q, want 2 [a]", n, ex)
	}
}

func TestCommentBody(t *testing.T) {
	b, runes := commentBody("art-2", 600)
	if len(b) > 600 || len(b) < 590 || runes < 150 {
		t.Errorf("a %d-byte comment with %d characters; want just under 600 bytes of Chinese", len(b), runes)
	}
}
