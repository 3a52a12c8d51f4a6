package store

import (
	"bytes"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"consult/comments"
)

// The hand-written encodings write exactly what the JSON package writes: the
// entry's bytes are the record, and a receipt's digest covers them.
func FuzzEntryJSON(f *testing.F) {
	f.Add("1-ABCDE-FGHIJ", "draft-1", "ch1-art1", "建议增加听证程序。\n<b>&\"\\ \u2028", "individual", true, "张三", "13800000000", "salt", "pc")
	f.Add("", "", "", "", "", false, "", "", "", "")
	f.Fuzz(func(t *testing.T, code, draft, section, body, category string, publish bool, name, contact, salt, pc string) {
		e := entry{V: entryVersion, Code: code, DraftID: draft, Section: section, Body: body, Category: comments.Category(category), PublishName: publish, PC: pc}
		want, werr := jsonv2.Marshal(e)
		got, gerr := e.appendJSON(nil)
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("entry:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
		}
		p := personal{Name: name, Contact: contact, Salt: salt}
		want, werr = jsonv2.Marshal(p)
		got, gerr = p.appendJSON(nil)
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("personal:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
		}
	})
}
