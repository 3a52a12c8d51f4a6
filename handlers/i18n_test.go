package handlers

import (
	"strings"
	"testing"
	"time"

	"consult/accounts"
	"consult/comments"
	"consult/drafts"
)

// TestValidationMessages: every key a validation error carries is in the
// catalogue in both languages, and its arguments fit its verbs, so that the
// API and the pages can say what the domain means.
func TestValidationMessages(t *testing.T) {
	var ms []message
	d := drafts.Draft{Sections: []drafts.Section{{Anchor: "a"}}}
	for _, s := range []comments.Submission{
		{Body: " ", Name: "\xff", Contact: strings.Repeat("x", comments.MaxContact+1), Section: "nope", Category: "alien", IdempotencyKey: "a b"},
		{Body: "\xff", Name: strings.Repeat("x", comments.MaxName+1)},
		{Body: strings.Repeat("x", comments.MaxBody+1)},
	} {
		ve, ok := comments.Validate(s, d).(*comments.ValidationError)
		if !ok {
			t.Fatalf("Validate(%+v) gave no *ValidationError", s)
		}
		for _, f := range ve.Fields {
			ms = append(ms, message(f))
		}
	}
	now := time.Now()
	for _, dr := range []drafts.Draft{
		{ID: "X", Title: " ", Bureau: "\xff", Text: strings.Repeat("x", 500001), Kind: "poem", OpensAt: now, ClosesAt: now.Add(-time.Hour), DigestRecipients: []string{"Boss <b@x.cn>"}},
		{ID: "ok-id", DigestRecipients: make([]string, 51)},
		{ID: "ok-id"},
	} {
		ve, ok := dr.Validate().(*drafts.ValidationError)
		if !ok {
			t.Fatalf("Validate(%+v) gave no *ValidationError", dr)
		}
		for _, f := range ve.Fields {
			ms = append(ms, message(f))
		}
	}
	ve, _ := drafts.Limits{MaxComments: -1, PoWBits: 99}.Validate().(*drafts.ValidationError)
	for _, f := range ve.Fields {
		ms = append(ms, message(f))
	}
	// The store's own, and the API's decoding errors.
	ms = append(ms, message(drafts.Invalid("opens_at", "err.draft.opens_past", 5).Fields["opens_at"]),
		message(drafts.Invalid("opens_at", "err.draft.opens_import").Fields["opens_at"]),
		message(drafts.Invalid("closes_at", "err.draft.closes_past").Fields["closes_at"]),
		message{Key: "err.json.unknown"}, message{Key: "err.json.time"}, message{Key: "err.json.type", Args: []any{"number"}})
	for _, err := range []error{
		accounts.User{Name: "X", Role: "king", Bureaus: []string{"b"}}.Validate(),
		accounts.ValidatePassword("zhang", "short"),
		accounts.ValidateToken("all", " "),
		accounts.ValidateBureauName(" "),
	} {
		ve, ok := err.(*accounts.ValidationError)
		if !ok {
			t.Fatalf("%v is no *accounts.ValidationError", err)
		}
		for _, f := range ve.Fields {
			ms = append(ms, message(f))
		}
	}
	for _, m := range ms {
		for _, l := range []lang{langZH, langEN} {
			got := tr{Lang: l}.T(m.Key, m.Args...)
			if strings.Contains(got, "⟦") || strings.Contains(got, "%!") {
				t.Errorf("%s: %s %v = %q", l, m.Key, m.Args, got)
			}
		}
	}
}
