package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"consult/internal/smtptest"
)

// digestRow is one comment of a digest's CSV.
type digestRow struct {
	Code string // receipt_code
	Body string
}

// digest is one e-mail the SMTP server received, as the check reads it.
type digest struct {
	To      []string // envelope recipients
	Subject string
	Rows    []digestRow
	Err     error // the mail could not be read as a digest
}

func readDigest(m smtptest.Message) digest {
	d := digest{To: m.To}
	p, err := smtptest.Parse(m.Data)
	if err != nil {
		d.Err = fmt.Errorf("digest to %v: %w", m.To, err)
		return d
	}
	d.Subject = p.Subject
	b, err := digestCSV(p)
	if err == nil {
		d.Rows, err = parseDigestCSV(b)
	}
	if err != nil {
		d.Err = fmt.Errorf("digest to %v: %w", m.To, err)
	}
	return d
}

// digestCSV returns the CSV of every comment a digest carries: today the
// attachment named "<draft>-comments.csv". A digest too large to attach it will
// carry a signed link to the file instead; this is the one place that has to
// learn to follow it.
func digestCSV(p *smtptest.Parsed) ([]byte, error) {
	for _, a := range p.Attachments {
		if strings.HasSuffix(a.Filename, "-comments.csv") {
			return a.Data, nil
		}
	}
	names := make([]string, 0, len(p.Attachments))
	for _, a := range p.Attachments {
		names = append(names, a.Filename)
	}
	return nil, fmt.Errorf("no *-comments.csv attachment (attachments: %q)", names)
}

// parseDigestCSV reads notify's CSV: a UTF-8 byte order mark, a header row, one
// row per comment. Columns are found by the English half of their header
// ("回执编号 receipt_code", "意见 body"), so that a column added or moved does
// not break the check.
func parseDigestCSV(b []byte) ([]digestRow, error) {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("CSV: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("CSV: no header row")
	}
	codeCol, bodyCol := -1, -1
	for i, h := range rows[0] {
		switch {
		case strings.HasSuffix(h, "receipt_code"):
			codeCol = i
		case strings.HasSuffix(h, " body"):
			bodyCol = i
		}
	}
	if codeCol < 0 || bodyCol < 0 {
		return nil, fmt.Errorf("CSV: no receipt_code or body column in %q", rows[0])
	}
	out := make([]digestRow, 0, len(rows)-1)
	for _, r := range rows[1:] {
		out = append(out, digestRow{Code: r[codeCol], Body: r[bodyCol]})
	}
	return out, nil
}

// waitDigests waits until every recipient has a message or deadline passes,
// then a further grace, in which a digest sent twice would arrive, and returns
// every message received.
func waitDigests(ctx context.Context, mail *smtptest.Server, recipients []string, deadline time.Time, grace time.Duration) []smtptest.Message {
	for time.Now().Before(deadline) {
		got := map[string]bool{}
		for _, m := range mail.Messages() {
			for _, to := range m.To {
				got[to] = true
			}
		}
		all := true
		for _, r := range recipients {
			all = all && got[r]
		}
		if all || !sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	sleep(ctx, grace)
	return mail.Messages()
}

// startMailbox runs smtptest's server in this program, which is not a test:
// smtptest.Start wants a testing.TB for its cleanup and its failures.
// processTB gives it the three methods it calls; the embedded nil TB satisfies
// the rest of the interface and would panic if anything else were called.
func startMailbox() (mail *smtptest.Server, stop func(), err error) {
	tb := &processTB{}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(tbFatal)
			if !ok {
				panic(r)
			}
			tb.cleanup()
			err = errors.New(string(f))
		}
	}()
	return smtptest.Start(tb, smtptest.Options{}), tb.cleanup, nil
}

type processTB struct {
	testing.TB
	cleanups []func()
}

type tbFatal string

func (t *processTB) Helper()                        {}
func (t *processTB) Cleanup(f func())               { t.cleanups = append(t.cleanups, f) }
func (t *processTB) Fatalf(format string, a ...any) { panic(tbFatal(fmt.Sprintf(format, a...))) }

func (t *processTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}
