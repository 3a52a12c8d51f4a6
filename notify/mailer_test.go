package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"consult/internal/smtptest"
)

const testFrom = "意见征集系统 <noreply@consult.example.gov.cn>"

func fixtureEmail(t *testing.T, to string) (Rendered, string) {
	t.Helper()
	r := wholeMail(t, fixtureDigest(t, Bureau))
	id, err := MessageID("hongya-fazhi-2026", finalJob, to, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	return r, id
}

// wholeMail is the e-mail of a digest sent whole.
func wholeMail(t *testing.T, d *Digest) Rendered {
	t.Helper()
	r := renderAll(t, d)
	return Rendered{Subject: d.Subject(), Text: r.text, HTML: r.html, CSV: r.csv, CSVFilename: d.CSVFilename()}
}

// checkDelivered parses m as a mail client would and compares it with r.
func checkDelivered(t *testing.T, m smtptest.Message, r Rendered, to, messageID string) {
	t.Helper()
	p := m.Parse(t)
	if p.Subject != r.Subject {
		t.Errorf("Subject = %q, want %q", p.Subject, r.Subject)
	}
	if got := p.Header.Get("Message-Id"); got != messageID {
		t.Errorf("Message-Id = %q, want %q", got, messageID)
	}
	if _, err := p.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}
	if got := p.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if addrs, err := p.Header.AddressList("To"); err != nil || len(addrs) != 1 || addrs[0].Address != to {
		t.Errorf("To = %v (%v), want %s", addrs, err, to)
	}
	if addrs, err := p.Header.AddressList("From"); err != nil || len(addrs) != 1 || addrs[0].Name != "意见征集系统" {
		t.Errorf("From = %v (%v)", addrs, err)
	}
	// Quoted-printable carries line ends as CR LF (RFC 2045); compare lines.
	lf := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
	if lf(p.Text) != lf(string(r.Text)) {
		t.Errorf("text body differs from the rendered digest")
	}
	if lf(p.HTML) != lf(string(r.HTML)) {
		t.Errorf("html body differs from the rendered digest")
	}
	if len(p.Attachments) != 1 {
		t.Fatalf("%d attachments, want 1", len(p.Attachments))
	}
	a := p.Attachments[0]
	if a.Filename != r.CSVFilename || a.ContentType != "text/csv" || !bytes.Equal(a.Data, r.CSV) {
		t.Errorf("attachment %q %q, %d bytes; want %q text/csv, %d bytes", a.Filename, a.ContentType, len(a.Data), r.CSVFilename, len(r.CSV))
	}
	for _, line := range strings.Split(string(m.Data), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d characters: %.80s…", len(line), line)
		}
	}
}

func TestSMTPMailer(t *testing.T) {
	tests := []struct {
		name   string
		opts   smtptest.Options
		scheme string
		user   *url.Userinfo
	}{
		{name: "plain, no STARTTLS offered", scheme: "smtp"},
		{name: "AUTH PLAIN without TLS on localhost", opts: smtptest.Options{Username: "u", Password: "p@ss:w/rd"}, scheme: "smtp", user: url.UserPassword("u", "p@ss:w/rd")},
		{name: "STARTTLS and AUTH", opts: smtptest.Options{StartTLS: true, Username: "u", Password: "secret"}, scheme: "smtp", user: url.UserPassword("u", "secret")},
		{name: "implicit TLS", opts: smtptest.Options{ImplicitTLS: true, Username: "u", Password: "secret"}, scheme: "smtps", user: url.UserPassword("u", "secret")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			u := url.URL{Scheme: tt.scheme, User: tt.user, Host: srv.Addr}
			m, err := NewSMTPMailer(SMTPConfig{URL: u.String(), TLS: srv.ClientTLSConfig(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			to := "fzb@hongya.example.gov.cn"
			r, id := fixtureEmail(t, to)
			if err := m.Send(context.Background(), r.Email(testFrom, to, id, at("2026-12-01T10:05:00Z"))); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := srv.WaitFor(t, 1, 5*time.Second)
			got := msgs[0]
			if got.From != "noreply@consult.example.gov.cn" || len(got.To) != 1 || got.To[0] != to {
				t.Errorf("envelope %q -> %q", got.From, got.To)
			}
			if wantTLS := tt.opts.StartTLS || tt.opts.ImplicitTLS; got.TLS != wantTLS {
				t.Errorf("TLS = %v, want %v", got.TLS, wantTLS)
			}
			if got.User != tt.opts.Username {
				t.Errorf("authenticated as %q, want %q", got.User, tt.opts.Username)
			}
			checkDelivered(t, got, r, to, id)
		})
	}
}

func TestSMTPMailerErrors(t *testing.T) {
	to := "fzb@hongya.example.gov.cn"
	r, id := fixtureEmail(t, to)
	e := r.Email(testFrom, to, id, time.Now())

	t.Run("temporary refusal is returned", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{FailFirst: 1})
		m, err := NewSMTPMailer(SMTPConfig{URL: "smtp://" + srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Send(context.Background(), e); err == nil || !strings.Contains(err.Error(), "451") {
			t.Errorf("Send = %v, want the 451", err)
		}
	})
	t.Run("wrong password is not in the error", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{Username: "u", Password: "right"})
		m, err := NewSMTPMailer(SMTPConfig{URL: "smtp://u:wrong-secret@" + srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Send(context.Background(), e)
		if err == nil || strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("Send = %v, want an error without the password", err)
		}
	})
	t.Run("cancel abandons a stalled delivery", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{DataDelay: 3 * time.Second})
		m, err := NewSMTPMailer(SMTPConfig{URL: "smtp://" + srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = m.Send(ctx, e)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Send returned after %v", d)
		}
	})
}

func TestSMTPConfig(t *testing.T) {
	tests := []struct {
		url     string
		addr    string
		tls     bool
		auth    bool
		wantErr string
	}{
		{url: "smtp://mail.example.gov.cn", addr: "mail.example.gov.cn:25"},
		{url: "smtp://u:p@mail.example.gov.cn:587", addr: "mail.example.gov.cn:587", auth: true},
		{url: "smtps://u:p@mail.example.gov.cn", addr: "mail.example.gov.cn:465", tls: true, auth: true},
		{url: "smtps://[::1]:4650", addr: "[::1]:4650", tls: true},
		{url: "http://u:hunter2@mail.example.gov.cn", wantErr: "scheme"},
		{url: "smtp://u:hunter2@", wantErr: "no host"},
		{url: "smtp://u:hunter2@mail.example.gov.cn:x25", wantErr: "invalid port"},
		{url: "smtp://u:hunter2%zz@mail.example.gov.cn", wantErr: "invalid URL escape"},
	}
	for _, tt := range tests {
		m, err := NewSMTPMailer(SMTPConfig{URL: tt.url})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewSMTPMailer(%q) = %v, want an error with %q", tt.url, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("NewSMTPMailer(%q) error shows the password: %v", tt.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewSMTPMailer(%q): %v", tt.url, err)
			continue
		}
		if m.addr != tt.addr || m.implicit != tt.tls || (m.auth != nil) != tt.auth {
			t.Errorf("NewSMTPMailer(%q) = addr %q tls %v auth %v", tt.url, m.addr, m.implicit, m.auth != nil)
		}
	}
	c := SMTPConfig{URL: "smtps://digest:hunter2@mail.example.gov.cn:465", Timeout: 10 * time.Second}
	for _, s := range []string{c.String(), must(NewSMTPMailer(c)).String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "digest:xxxxx@mail.example.gov.cn:465") {
			t.Errorf("String() = %q", s)
		}
	}
	if s := (SMTPConfig{URL: "smtp://u:hunter2@host:%zz"}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("String() of a bad URL = %q", s)
	}
}

func TestMessageID(t *testing.T) {
	a1, _ := MessageID("d-1", finalJob, "fzb@example.gov.cn", testFrom)
	a2, _ := MessageID("d-1", finalJob, " FZB@example.gov.cn", "other name <noreply@consult.example.gov.cn>")
	b, _ := MessageID("d-1", finalJob, "director@example.gov.cn", testFrom)
	c, _ := MessageID("d-1", "interim-1700000000000", "fzb@example.gov.cn", testFrom)
	if a1 != a2 {
		t.Errorf("same digest, same recipient: %q != %q", a1, a2)
	}
	if a1 == b || a1 == c {
		t.Errorf("ids collide: %q %q %q", a1, b, c)
	}
	if !strings.HasPrefix(a1, "<digest.d-1.final.") || !strings.HasSuffix(a1, "@consult.example.gov.cn>") || strings.Contains(a1, "fzb") {
		t.Errorf("MessageID = %q", a1)
	}
	if _, err := MessageID("d-1", finalJob, "x@example.org", "no-domain"); err == nil {
		t.Error("MessageID accepted a From without a domain")
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	var logs bytes.Buffer
	o, err := NewOutbox(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	to := "fzb@hongya.example.gov.cn"
	r, id := fixtureEmail(t, to)
	for range 2 { // the same message twice: one file
		if err := o.Send(context.Background(), r.Email(testFrom, to, id, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".eml") {
		t.Fatalf("outbox holds %v, want one .eml", entries)
	}
	path := filepath.Join(dir, entries[0].Name())
	info, _ := os.Stat(path)
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, smtptest.Message{Data: raw}, r, to, id)
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not name the file:\n%s", logs.String())
	}
}
