package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// markerRE finds a submission's marker in a comment body (see load.Run).
var markerRE = regexp.MustCompile(`chaos-c\d+-s\d+`)

// verdict is what one digest says about the submissions.
type verdict struct {
	Rows     int // comments in the digest
	Receipts int // submissions that got a receipt
	// Lost are receipt codes a client was given that the digest lacks.
	Lost []string
	// Doubled are the submissions the digest holds more than once, and
	// DoubledCodes the receipt codes of all their copies and of any code that
	// is in the digest twice.
	Doubled      []double
	DoubledCodes []string
	// StoredNoReceipt: submissions whose client got no receipt (it gave up, or
	// sent no key and so did not retry) and that the digest holds once.
	StoredNoReceipt int
	// LeftNothing: submissions whose client got no receipt and that the digest
	// does not hold.
	LeftNothing int
	// Foreign are rows that no submission explains: no marker, or one the load
	// never sent. They mean the harness or the digest is broken.
	Foreign []string
}

// double is one submission the digest holds more than once.
type double struct {
	Marker  string
	Codes   []string // the codes of its copies, one per copy
	Receipt string   // what its client was given, "" for nothing
	Keyed   bool     // sent with an Idempotency-Key
}

func (d double) String() string {
	how := "no key"
	if d.Keyed {
		how = "with a key"
	}
	if d.Receipt != "" {
		how += ", receipt " + d.Receipt + " given"
	} else {
		how += ", no receipt given"
	}
	return fmt.Sprintf("%s ×%d (%s)", strings.Join(slices.Compact(slices.Sorted(slices.Values(d.Codes))), "+"), len(d.Codes), how)
}

// check compares the submissions with one digest's rows. A submission's copies
// are the rows carrying its marker, whatever their code; a receipt is kept when
// a row carries its code.
func check(subs []*submission, rows []digestRow) verdict {
	v := verdict{Rows: len(rows)}
	copies := map[string][]string{} // marker -> codes of its rows
	byCode := map[string]int{}
	for _, r := range rows {
		byCode[r.Code]++
		m := markerRE.FindString(r.Body)
		if m == "" {
			v.Foreign = append(v.Foreign, r.Code)
			continue
		}
		copies[m] = append(copies[m], r.Code)
	}
	doubled := map[string]bool{}
	for _, s := range subs {
		cs := copies[s.Marker]
		delete(copies, s.Marker)
		if s.Receipt != "" {
			v.Receipts++
			if byCode[s.Receipt] == 0 {
				v.Lost = append(v.Lost, s.Receipt)
			}
		}
		switch {
		case len(cs) > 1:
			v.Doubled = append(v.Doubled, double{Marker: s.Marker, Codes: cs, Receipt: s.Receipt, Keyed: s.Key != ""})
			for _, c := range cs {
				doubled[c] = true
			}
		case len(cs) == 1 && s.Receipt == "":
			v.StoredNoReceipt++
		case len(cs) == 0 && s.Receipt == "":
			v.LeftNothing++
		}
	}
	for m, cs := range copies {
		v.Foreign = append(v.Foreign, fmt.Sprintf("%v (marker %s, never sent)", cs, m))
	}
	// A code twice with no marker behind it is a double all the same.
	for c, n := range byCode {
		if n > 1 {
			doubled[c] = true
		}
	}
	for c := range doubled {
		v.DoubledCodes = append(v.DoubledCodes, c)
	}
	slices.SortFunc(v.Doubled, func(a, b double) int { return strings.Compare(a.Marker, b.Marker) })
	slices.Sort(v.Lost)
	slices.Sort(v.DoubledCodes)
	slices.Sort(v.Foreign)
	return v
}

// ok reports whether the digest holds every receipt exactly once and nothing twice.
func (v verdict) ok() bool {
	return len(v.Lost) == 0 && len(v.Doubled) == 0 && len(v.DoubledCodes) == 0 && len(v.Foreign) == 0
}
