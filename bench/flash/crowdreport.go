package main

import (
	"fmt"
	"strings"
	"time"
)

// crowdReport is a whole `crowd` run, for the terminal and RESULTS.md.
type crowdReport struct {
	Opts       crowdOptions
	Machine    machine
	Start, End time.Time
	LoadAfter  string
	Off        offRun
	On         *onRun
}

// failures are the promises broken: any one makes the run exit 1.
func (r crowdReport) failures() []string {
	var f []string
	off := r.Off
	if off.Err != nil {
		f = append(f, "limits off: the run stopped: "+firstLineOf(off.Err.Error()))
	} else {
		f = append(f, promiseFailures("limits off", off.Probe, r.Opts.Timeout, false)...)
		f = append(f, promiseFailures("limits off", off.Crowd, r.Opts.Timeout, true)...)
		f = append(f, recordFailures("limits off", off.Record)...)
		if n := off.Probe.Counts[ansAccepted] + off.Crowd.Counts[ansAccepted]; off.ServerCount > 0 && off.ServerCount < n {
			f = append(f, fmt.Sprintf("limits off: consultd counted %d receipts (consult_comments_receipts_issued_total) for %d 202s", off.ServerCount, n))
		}
	}
	if r.On == nil {
		return f
	}
	on := r.On
	if on.Err != nil {
		return append(f, "limits on: the run stopped: "+firstLineOf(on.Err.Error()))
	}
	o, a := on.Ordinary.Tally, on.Abusive.Tally
	if n := o.Total() - o.Counts[ansAccepted]; n > 0 {
		f = append(f, fmt.Sprintf("limits on: %d of the ordinary clients' %d comments were not answered 202 (%s)", n, o.Total(), breakdown(o)))
	}
	if a.Counts[ansTooMany] == 0 {
		f = append(f, fmt.Sprintf("limits on: no abusive client got a 429 (%s): are per-client limits on, and X-Forwarded-For believed from 127.0.0.1?", breakdown(a)))
	}
	if n := a.Counts[ansTooMany] - a.RetryAfter[ansTooMany]; n > 0 {
		f = append(f, fmt.Sprintf("limits on: %d of the abusive clients' 429s had no Retry-After", n))
	}
	for _, c := range []classRun{on.Ordinary, on.Abusive} {
		t := c.Tally
		if n := t.Counts[ansOther5xx]; n > 0 {
			f = append(f, fmt.Sprintf("limits on, %s: %d answers were 5xx other than 503 (first: %s)", c.Name, n, t.Samples[ansOther5xx]))
		}
		if n := t.Counts[ansUnavailable] - t.RetryAfter[ansUnavailable]; n > 0 {
			f = append(f, fmt.Sprintf("limits on, %s: %d 503s had no Retry-After", c.Name, n))
		}
		if n := t.Counts[ansTimeout]; n > 0 {
			f = append(f, fmt.Sprintf("limits on, %s: %d client timeouts (no answer within %s)", c.Name, n, r.Opts.Timeout))
		}
		if n := t.Counts[ansError]; n > 0 {
			f = append(f, fmt.Sprintf("limits on, %s: %d transport errors (first: %s)", c.Name, n, t.Samples[ansError]))
		}
	}
	return append(f, recordFailures("limits on", on.Record)...)
}

// promiseFailures checks a limits-off tally: every answer is 202, or 503 with
// Retry-After when shedding is allowed; no timeouts within the bound; no
// transport errors; every 202 carried a receipt.
func promiseFailures(run string, t tallySnapshot, bound time.Duration, shedOK bool) []string {
	var f []string
	what := run + ", probe"
	if shedOK {
		what = run + ", crowd"
	}
	for _, a := range []answer{ansTooMany, ansOther4xx, ansOther5xx, ansOtherStatus} {
		if n := t.Counts[a]; n > 0 {
			f = append(f, fmt.Sprintf("%s: %d answers were %s (first: %s)", what, n, a, t.Samples[a]))
		}
	}
	if n := t.Counts[ansUnavailable]; n > 0 && !shedOK {
		f = append(f, fmt.Sprintf("%s: %d answers were 503 under a load the intake sustains", what, n))
	}
	if n := t.Counts[ansUnavailable] - t.RetryAfter[ansUnavailable]; n > 0 && shedOK {
		f = append(f, fmt.Sprintf("%s: %d 503s had no Retry-After", what, n))
	}
	if n := t.Counts[ansTimeout]; n > 0 {
		f = append(f, fmt.Sprintf("%s: %d client timeouts (no answer within %s)", what, n, bound))
	}
	if n := t.Counts[ansError]; n > 0 {
		f = append(f, fmt.Sprintf("%s: %d transport errors (first: %s)", what, n, t.Samples[ansError]))
	}
	if t.ReceiptsLost > 0 {
		f = append(f, fmt.Sprintf("%s: %d 202s carried no receipt code", what, t.ReceiptsLost))
	}
	return f
}

func recordFailures(run string, rc recordCheck) []string {
	switch {
	case rc.Err != nil:
		return []string{run + ": the record could not be read back: " + rc.Err.Error()}
	case rc.Missing > 0:
		return []string{fmt.Sprintf("%s: %d of %d receipts of 202s are not in the record (e.g. %s)", run, rc.Missing, rc.Receipts, strings.Join(rc.Examples, ", "))}
	}
	return nil
}

// warnings say when the figures are weaker than they look, without failing.
func (r crowdReport) warnings() []string {
	var w []string
	off := r.Off
	if off.Err != nil {
		return nil
	}
	if got := off.Offer.OfferedRate(); got < 0.9*off.Target {
		w = append(w, fmt.Sprintf("the crowd really offered %.0f/s of the %.0f/s asked (%d requests not offered: %d in flight was the bound; %d launched late)",
			got, off.Target, off.Offer.NotOffered, r.Opts.InFlight, off.Offer.Late))
	}
	if off.Offer.Offered > 0 && float64(off.Offer.Late) > 0.01*float64(off.Offer.Offered) {
		w = append(w, fmt.Sprintf("%d requests (%.1f%%) were launched more than %s after their due time: the generator was short of CPU",
			off.Offer.Late, 100*float64(off.Offer.Late)/float64(off.Offer.Offered), r.Opts.LateAfter))
	}
	if off.Dials < int64(r.Opts.Conns) {
		w = append(w, fmt.Sprintf("only %d connections were opened of the %d allowed", off.Dials, r.Opts.Conns))
	}
	return w
}

func breakdown(t tallySnapshot) string {
	var parts []string
	for a := answer(0); a < nAnswers; a++ {
		if t.Counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", a, t.Counts[a]))
		}
	}
	if len(parts) == 0 {
		return "no answers"
	}
	return strings.Join(parts, ", ")
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func pct(n, of int64) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// answerRows is the table of answers by class, with Retry-After where it matters.
func answerRows(t tallySnapshot, span time.Duration, notOffered int64) [][]string {
	total := t.Total()
	var rows [][]string
	for a := answer(0); a < nAnswers; a++ {
		name := a.String()
		switch a {
		case ansUnavailable, ansTooMany:
			name += fmt.Sprintf(" (%d with Retry-After)", t.RetryAfter[a])
		}
		rate := "–"
		if span > 0 {
			rate = fmt.Sprintf("%.0f", float64(t.Counts[a])/span.Seconds())
		}
		rows = append(rows, []string{name, fmt.Sprint(t.Counts[a]), pct(t.Counts[a], total), rate})
	}
	if notOffered >= 0 {
		rows = append(rows, []string{"not offered (generator's in-flight bound)", fmt.Sprint(notOffered), "", ""})
	}
	return rows
}

func mdTable(header []string, align string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for _, c := range align {
		if c == 'r' {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func textTable(header []string, rows [][]string) string {
	w := make([]int, len(header))
	for i, h := range header {
		w[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			pad := w[i] - len([]rune(c))
			if i == 0 {
				b.WriteString("  " + c + strings.Repeat(" ", pad))
			} else {
				b.WriteString("  " + strings.Repeat(" ", pad) + c)
			}
		}
		b.WriteString("\n")
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func (r crowdReport) memLine(m memory) string {
	s := fmt.Sprintf("RSS %s before, peak %s (sampled every %s), %s at the end (VmHWM %s); threads peak %d",
		fmtMiB(m.Before.RSSKB), fmtMiB(m.PeakRSSKB), m.SampleEvery, fmtMiB(m.End.RSSKB), fmtMiB(m.HWMKB), m.PeakThreads)
	if m.GSource != "" {
		s += fmt.Sprintf("; goroutines %d before, peak %d, %d at the end (%s, once a second)", m.GBefore, m.GPeak, m.GEnd, m.GSource)
	} else if m.GErr != nil {
		s += "; goroutines unknown: " + m.GErr.Error()
	}
	return s
}

// text is the summary printed at the end.
func (r crowdReport) text() string {
	var b strings.Builder
	off := r.Off
	b.WriteString("flash crowd, limits off\n")
	if off.Err != nil {
		fmt.Fprintf(&b, "  stopped: %s\n", firstLineOf(off.Err.Error()))
	} else {
		fmt.Fprintf(&b, "  sustained (closed loop, %d connections): %.0f 202/s, p50 %s, p99 %s\n", r.Opts.ProbeConns, off.Sustained, fmtDur(off.Probe.P50), fmtDur(off.Probe.P99))
		fmt.Fprintf(&b, "  offered: asked %.0f/s for %s; launched %d of %d scheduled = %.0f/s really offered; not offered %d; late (> %s) %d, latest %s\n",
			off.Target, r.Opts.Dur, off.Offer.Offered, off.Offer.Scheduled, off.Offer.OfferedRate(), off.Offer.NotOffered, r.Opts.LateAfter, off.Offer.Late, fmtDur(off.Offer.MaxLate))
		b.WriteString(textTable([]string{"answer", "count", "share", "per s"}, answerRows(off.Crowd, off.Offer.Span(), -1)))
		fmt.Fprintf(&b, "  202s: %.0f/s beside %.0f/s sustained (%.2f×); latency p50 %s, p99 %s, p99.9 %s, max %s\n",
			off.CrowdRate, off.Sustained, ratio(off.CrowdRate, off.Sustained), fmtDur(off.Crowd.P50), fmtDur(off.Crowd.P99), fmtDur(off.Crowd.P999), fmtDur(off.Crowd.Max))
		fmt.Fprintf(&b, "  consultd: %s\n", r.memLine(off.Mem))
		fmt.Fprintf(&b, "  record: %d comments read back; %d receipts of 202s, %d missing\n", off.Record.Read, off.Record.Receipts, off.Record.Missing)
	}
	if r.On != nil {
		b.WriteString("\nflash crowd, limits on\n")
		if r.On.Err != nil {
			fmt.Fprintf(&b, "  stopped: %s\n", firstLineOf(r.On.Err.Error()))
		} else {
			b.WriteString(textTable(classHeader, classRows(*r.On)))
			fmt.Fprintf(&b, "  record: %d comments read back; %d receipts of 202s, %d missing\n", r.On.Record.Read, r.On.Record.Receipts, r.On.Record.Missing)
		}
	}
	return b.String()
}

var classHeader = []string{"class", "clients", "per client", "sent", "202", "429 (Retry-After)", "503", "other", "timeouts", "202 per client", "202 p99"}

func classRows(on onRun) [][]string {
	var rows [][]string
	for _, c := range []classRun{on.Ordinary, on.Abusive} {
		t := c.Tally
		other := t.Total() - t.Counts[ansAccepted] - t.Counts[ansTooMany] - t.Counts[ansUnavailable] - t.Counts[ansTimeout]
		rows = append(rows, []string{c.Name, fmt.Sprint(c.Clients), fmt.Sprintf("%g/min", c.PerMin), fmt.Sprint(c.Offer.Offered),
			fmt.Sprint(t.Counts[ansAccepted]), fmt.Sprintf("%d (%d)", t.Counts[ansTooMany], t.RetryAfter[ansTooMany]),
			fmt.Sprint(t.Counts[ansUnavailable]), fmt.Sprint(other), fmt.Sprint(t.Counts[ansTimeout]),
			fmt.Sprintf("%.2f", float64(t.Counts[ansAccepted])/float64(max(c.Clients, 1))), fmtDur(t.P99)})
	}
	return rows
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// markdown is the flash section of RESULTS.md.
func (r crowdReport) markdown() string {
	var b strings.Builder
	o := r.Opts
	off := r.Off
	b.WriteString("## Flash crowd\n\n")
	b.WriteString("Written by `make bench-flash` (bench/flash); regenerate it rather than editing it.\n\n")
	fmt.Fprintf(&b, "- Command: `%s`\n", o.command())
	fmt.Fprintf(&b, "- Date: %s to %s (UTC)\n", r.Start.UTC().Format("2006-01-02 15:04:05"), r.End.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine.markdown())
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s\n", r.Machine.LoadAvg, r.LoadAfter)
	if f := r.failures(); len(f) > 0 {
		b.WriteString("- **Result: FAILED**: consultd broke a promise or the run did not finish:\n")
		for _, s := range f {
			b.WriteString("  - " + s + "\n")
		}
	} else {
		b.WriteString("- Result: **PASS**: every promise below held.\n")
	}
	for _, s := range r.warnings() {
		b.WriteString("- Caveat: " + s + "\n")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Everything runs on this one machine: a redis-server (appendfsync always, `internal/redisproc`), `bin/consultd` "+
		"(REDIS_URL to it, CONSULT_DEMO=false, a generated CONSULT_ADMIN_TOKEN) and the load generator, all on loopback. "+
		"Each comment is `POST /api/v1/drafts/%s/comments` with a %d-byte JSON comment (a body of %d Chinese characters).\n\n",
		crowdDraft, off.BodyBytes, off.BodyRunes)
	b.WriteString("Bounds the generator keeps and states:\n\n")
	fmt.Fprintf(&b, "- open loop: request *i* is due at start + *i*/rate and is launched then, whether or not earlier ones were answered; "+
		"at most %d requests in flight over at most %d connections (`MaxConnsPerHost`; opened before the crowd, %d opened in all), "+
		"and a request due while %d are outstanding is not sent and counted as *not offered*; one launched more than %s after its due time is counted as *late*\n",
		o.InFlight, o.Conns, off.Dials, o.InFlight, o.LateAfter)
	fmt.Fprintf(&b, "- client timeout %s: a request not answered within it is a *client timeout*; latency runs from the launch to the end of the answer\n", o.Timeout)
	fmt.Fprintf(&b, "- consultd's RSS is read from /proc/<pid>/status every %s, its goroutines once a second\n", o.SampleEvery)
	b.WriteString("- promises checked (any broken one fails the run): with limits off every answer is 202, or 503 with Retry-After; no client timeouts; " +
		"no transport errors; every 202's receipt code is in the record, read back through `GET /api/v1/drafts/{id}/comments?limit=&after=`; " +
		"with limits on, ordinary clients get only 202s, abusive clients get 429s, each with Retry-After, and nobody gets another 5xx\n\n")

	fmt.Fprintf(&b, "### Limits off (`%s`)\n\n", strings.Join(off.Env, " "))
	if off.Err != nil {
		fmt.Fprintf(&b, "The run stopped: `%s`\n\n", firstLineOf(off.Err.Error()))
	} else {
		fmt.Fprintf(&b, "What the intake sustains, measured first (closed loop, %d connections, %s after a %s warm-up): **%.0f 202/s**, p50 %s, p99 %s.\n\n",
			o.ProbeConns, off.ProbeTook.Round(100*time.Millisecond), o.Warmup, off.Sustained, fmtDur(off.Probe.P50), fmtDur(off.Probe.P99))
		asked := fmt.Sprintf("%.0f/s (%g × sustained)", off.Target, o.Times)
		if o.Rate > 0 {
			asked = fmt.Sprintf("%.0f/s (-rate)", off.Target)
		}
		b.WriteString(mdTable([]string{"the crowd", ""}, "ll", [][]string{
			{"asked", asked + " for " + o.Dur.String()},
			{"scheduled", fmt.Sprint(off.Offer.Scheduled)},
			{"launched (really offered)", fmt.Sprintf("%d = **%.0f/s** over %s (%.0f%% of the rate asked)", off.Offer.Offered, off.Offer.OfferedRate(),
				off.Offer.Span().Round(time.Millisecond), 100*ratio(off.Offer.OfferedRate(), off.Target))},
			{"not offered (in-flight bound)", fmt.Sprint(off.Offer.NotOffered)},
			{fmt.Sprintf("late (> %s)", o.LateAfter), fmt.Sprintf("%d (latest %s)", off.Offer.Late, fmtDur(off.Offer.MaxLate))},
			{"most in flight", fmt.Sprint(off.Offer.PeakInFlight)},
		}))
		b.WriteString("\n")
		b.WriteString(mdTable([]string{"answer", "count", "share", "per s"}, "lrrr", answerRows(off.Crowd, off.Offer.Span(), -1)))
		b.WriteString("\n")
		fmt.Fprintf(&b, "- 202s: **%.0f/s** beside the sustained %.0f/s (%.2f×); latency of the 202s p50 **%s**, p99 **%s**, p99.9 **%s**, max %s\n",
			off.CrowdRate, off.Sustained, ratio(off.CrowdRate, off.Sustained), fmtDur(off.Crowd.P50), fmtDur(off.Crowd.P99), fmtDur(off.Crowd.P999), fmtDur(off.Crowd.Max))
		fmt.Fprintf(&b, "- consultd: %s\n", r.memLine(off.Mem))
		fmt.Fprintf(&b, "- record: %d comments read back in %d pages (%s); the %d receipts of 202s (probe and crowd) looked up: **%d missing**\n\n",
			off.Record.Read, off.Record.Pages, off.Record.Took.Round(100*time.Millisecond), off.Record.Receipts, off.Record.Missing)
	}
	if r.On != nil {
		on := r.On
		fmt.Fprintf(&b, "### Limits on (`%s`, the default limits)\n\n", strings.Join(on.Env, " "))
		if on.Err != nil {
			fmt.Fprintf(&b, "The run stopped: `%s`\n\n", firstLineOf(on.Err.Error()))
		} else {
			fmt.Fprintf(&b, "For %s, %d ordinary clients at %g comments a minute each and %d abusive clients at %g a minute each, side by side, "+
				"each client its own X-Forwarded-For address in 198.18.0.0/15 (set aside for benchmarks); request *i* of a class goes to client *i* mod *clients*, "+
				"so each client's comments are evenly spaced.\n\n", o.LimitsDur, o.Clients, o.ClientPerMin, o.Abusers, o.AbuserPerMin)
			b.WriteString(mdTable(classHeader, "lrrrrrrrrrr", classRows(*on)))
			b.WriteString("\n")
			fmt.Fprintf(&b, "- consultd: %s\n", r.memLine(on.Mem))
			fmt.Fprintf(&b, "- record: %d comments read back; the %d receipts of 202s looked up: **%d missing**\n\n", on.Record.Read, on.Record.Receipts, on.Record.Missing)
		}
	}
	return b.String()
}
