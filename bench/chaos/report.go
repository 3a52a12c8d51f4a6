package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// findings is the outcome judged: the figures the terminal and RESULTS.md show,
// and what makes the run fail.
type findings struct {
	*outcome
	Verdict    verdict
	PerRcpt    map[string]int // digests per envelope recipient
	Failures   []string
	Build      string // what consultd was built from, when known
	Args       string // the harness's flags
	Duration   time.Duration
	LoadLength time.Duration
}

// judge applies the conditions: every receipt in the digest exactly
// once, nothing in it twice, exactly one digest per recipient, and no replica
// that died unasked.
func judge(o *outcome) *findings {
	f := &findings{outcome: o, PerRcpt: map[string]int{}, Duration: o.Ended.Sub(o.Began), LoadLength: o.LoadEnded.Sub(o.LoadBegan)}
	fail := func(format string, a ...any) { f.Failures = append(f.Failures, fmt.Sprintf(format, a...)) }
	for _, r := range recipients {
		f.PerRcpt[r] = 0
	}
	var first *verdict
	for _, d := range o.Digests {
		for _, to := range d.To {
			if !slices.Contains(recipients, to) {
				fail("a digest went to %s, who is not a recipient of the draft", to)
			}
			f.PerRcpt[to]++
		}
		if d.Err != nil {
			fail("%v", d.Err)
			continue
		}
		v := check(o.Subs, d.Rows)
		if first == nil {
			first = &v
			f.Verdict = v
			continue
		}
		if v.Rows != first.Rows || len(v.Lost) != len(first.Lost) || len(v.Doubled) != len(first.Doubled) {
			fail("the digests differ: to %v %d comments, %d lost, %d doubled; the first %d, %d, %d",
				d.To, v.Rows, len(v.Lost), len(v.Doubled), first.Rows, len(first.Lost), len(first.Doubled))
		}
	}
	for _, r := range sortedKeys(f.PerRcpt) {
		if n := f.PerRcpt[r]; n != 1 {
			fail("%s got %d digests, want exactly 1", r, n)
		}
	}
	if first == nil {
		// With no digest to read, every receipt counts as lost.
		for _, s := range o.Subs {
			if s.Receipt != "" {
				f.Verdict.Lost = append(f.Verdict.Lost, s.Receipt)
			}
		}
		f.Verdict.Receipts = len(f.Verdict.Lost)
	}
	v := f.Verdict
	if len(v.Lost) > 0 {
		fail("lost: %d receipts are not in the digest: %s", len(v.Lost), codeList(v.Lost, 20))
	}
	if len(v.Doubled) > 0 || len(v.DoubledCodes) > 0 {
		fail("doubled: %d comments are in the digest more than once: %s", len(v.Doubled), codeList(v.DoubledCodes, 20))
	}
	if len(v.Foreign) > 0 {
		fail("%d digest rows that no submission explains: %s", len(v.Foreign), codeList(v.Foreign, 5))
	}
	for _, c := range o.Crashed {
		fail("replica %s exited without being asked", c)
	}
	return f
}

// undelivered describes the server's own count of comments stored without a
// delivered receipt.
func (f *findings) undelivered() string {
	if !f.UndeliveredExposed {
		return "not exposed by this consultd (" + undeliveredMetric + ")"
	}
	return fmt.Sprintf("%d (%s summed over every replica's lives; a lower bound: what a process counted after its last scrape dies with it)",
		f.Undelivered, undeliveredMetric)
}

func (f *findings) errorsLine() string {
	var parts []string
	for _, k := range errKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, f.Failed[k]))
	}
	return strings.Join(parts, ", ")
}

func (f *findings) answersLine() string {
	var parts []string
	for _, a := range sortedKeys(f.Answers) {
		parts = append(parts, fmt.Sprintf("%s ×%d", a, f.Answers[a]))
	}
	return strings.Join(parts, ", ")
}

// faultLines are the faults by kind: how many, and each one's time and target.
func (f *findings) faultLines() []string {
	var out []string
	for _, k := range faultKinds {
		var at []string
		for _, in := range f.Faults {
			if in.Kind == k {
				at = append(at, fmt.Sprintf("t+%.1fs %s %s", in.Began.Seconds(), in.Target, in.Down))
			}
		}
		if len(at) > 0 {
			out = append(out, fmt.Sprintf("%s ×%d: %s", k, len(at), strings.Join(at, "; ")))
		}
	}
	if len(out) == 0 {
		out = append(out, "none")
	}
	return out
}

func (f *findings) digestsLine() string {
	var parts []string
	for _, r := range sortedKeys(f.PerRcpt) {
		parts = append(parts, fmt.Sprintf("%s %d", r, f.PerRcpt[r]))
	}
	return strings.Join(parts, ", ")
}

// figures are the rows both reports show, in order, with at most maxCodes
// receipt codes listed per row.
func (f *findings) figures(maxCodes int) [][2]string {
	v := f.Verdict
	doubled := fmt.Sprint(len(v.Doubled))
	if len(v.Doubled) > 0 {
		var ds []string
		for _, d := range v.Doubled {
			ds = append(ds, d.String())
		}
		doubled += ": " + strings.ReplaceAll(codeList(ds, maxCodes), ") ", "); ")
	}
	if extra := len(v.DoubledCodes) - countCodes(v.Doubled); extra > 0 {
		doubled += fmt.Sprintf("; %d receipt codes twice in the digest in all: %s", len(v.DoubledCodes), codeList(v.DoubledCodes, maxCodes))
	}
	lost := fmt.Sprint(len(v.Lost))
	if len(v.Lost) > 0 {
		lost += " — receipt codes: " + codeList(v.Lost, maxCodes)
	}
	rows := [][2]string{
		{"submissions", fmt.Sprintf("%d (%d with an Idempotency-Key, %d without), %d attempts", len(f.Subs), f.keyed(), len(f.Subs)-f.keyed(), f.Attempts)},
		{"receipts", fmt.Sprint(f.receipts())},
		{"failed attempts", f.errorsLine()},
	}
	if len(f.Answers) > 0 {
		rows = append(rows, [2]string{"unexpected answers", f.answersLine()})
	}
	for i, l := range f.faultLines() {
		name := ""
		if i == 0 {
			name = "faults injected"
		}
		rows = append(rows, [2]string{name, l})
	}
	rows = append(rows,
		[2]string{"digests per recipient", f.digestsLine()},
		[2]string{"comments in the digest", fmt.Sprint(v.Rows)},
		[2]string{"lost", lost},
		[2]string{"doubled", doubled},
		[2]string{"stored without receipt", fmt.Sprintf("%d (no receipt reached the client; the digest holds the comment once)", v.StoredNoReceipt)},
		[2]string{"server's undelivered count", f.undelivered()},
		[2]string{"left nothing", fmt.Sprintf("%d (no receipt, not in the digest)", v.LeftNothing)},
		[2]string{"duration", fmt.Sprintf("%s (load %s)", f.Duration.Round(100*time.Millisecond), f.LoadLength.Round(100*time.Millisecond))},
	)
	return rows
}

// text is the terminal report.
func (f *findings) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos: %d replicas, %d clients at %.0f comments/s, seed %d\n", f.Replicas, f.Clients, f.Rate, f.Seed)
	// Every code on the terminal: they are what the lead looks up in the logs.
	for _, r := range f.figures(math.MaxInt) {
		fmt.Fprintf(&b, "  %-27s %s\n", r[0], r[1])
	}
	if len(f.Failures) == 0 {
		b.WriteString("PASS: every receipt in the digest exactly once, nothing doubled, one digest per recipient\n")
		return b.String()
	}
	b.WriteString("\n" + strings.Repeat("!", 72) + "\nCHAOS RUN FAILED:\n")
	for _, s := range f.Failures {
		b.WriteString("  - " + s + "\n")
	}
	b.WriteString(strings.Repeat("!", 72) + "\n")
	return b.String()
}

// markdown is the chaos section of RESULTS.md, without its marker lines.
func (f *findings) markdown() string {
	var b strings.Builder
	b.WriteString("## Chaos: comments under crashes, Redis restarts and stalls\n\n")
	fmt.Fprintf(&b, "`make chaos` (`go run ./bench/chaos %s`), %s, consultd %s: %d replicas on one redis-server "+
		"(appendfsync always), %d clients at %.0f comments/s, seed %d.\n\n",
		f.Args, f.Began.Format("2006-01-02 15:04 MST"), f.Build, f.Replicas, f.Clients, f.Rate, f.Seed)
	if len(f.Failures) == 0 {
		b.WriteString("**PASS**: every receipt a client got is in the digest exactly once, nothing is in it twice, " +
			"and each recipient got exactly one digest.\n\n")
	} else {
		b.WriteString("**FAILED**:\n\n")
		for _, s := range f.Failures {
			b.WriteString("- " + s + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("| | |\n|---|---|\n")
	for _, r := range f.figures(100) {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], strings.ReplaceAll(r[1], "|", `\|`))
	}
	b.WriteString("\nA client sends about half its comments with an Idempotency-Key and retries those " +
		"(after a 503, a 5xx, a refused or reset connection or its timeout) on the next replica with the same key; " +
		"without a key it does not retry. \"Stored without receipt\" comes from the digest: comments whose " +
		"client got no receipt but whose marker is in it once.\n")
	return b.String()
}

// countCodes counts the distinct codes of the doubled submissions.
func countCodes(ds []double) int {
	seen := map[string]bool{}
	for _, d := range ds {
		for _, c := range d.Codes {
			seen[c] = true
		}
	}
	return len(seen)
}

// codeList shows at most n codes, and how many more there are.
func codeList(codes []string, n int) string {
	if len(codes) <= n {
		return strings.Join(codes, " ")
	}
	return fmt.Sprintf("%s … and %d more", strings.Join(codes[:n], " "), len(codes)-n)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
