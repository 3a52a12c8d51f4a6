package smtptest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/jordan-wright/email"
)

// send delivers raw with net/smtp, as a client of the server under test would.
func send(t *testing.T, s *Server, tlsMode string, auth smtp.Auth, from string, to []string, raw string) error {
	t.Helper()
	var conn net.Conn
	var err error
	if tlsMode == "implicit" {
		conn, err = tls.Dial("tcp", s.Addr, s.ClientTLSConfig())
	} else {
		conn, err = net.Dial("tcp", s.Addr)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close()
	if tlsMode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatal("server does not offer STARTTLS")
		}
		if err := c.StartTLS(s.ClientTLSConfig()); err != nil {
			t.Fatalf("starttls: %v", err)
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

const simple = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func TestServerRecordsEnvelopeAndData(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		tlsMode  string
		auth     smtp.Auth
		wantUser string
		wantTLS  bool
	}{
		{name: "plain", opts: Options{}},
		{name: "auth plain", opts: Options{Username: "u", Password: "p"}, auth: smtp.PlainAuth("", "u", "p", "127.0.0.1"), wantUser: "u"},
		{name: "starttls", opts: Options{StartTLS: true}, tlsMode: "starttls", wantTLS: true},
		{name: "implicit tls with auth", opts: Options{ImplicitTLS: true, Username: "u", Password: "p"}, tlsMode: "implicit", auth: smtp.PlainAuth("", "u", "p", "127.0.0.1"), wantUser: "u", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opts)
			if err := send(t, s, tt.tlsMode, tt.auth, "a@example.org", []string{"b@example.org", "c@example.org"}, simple); err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs := s.WaitFor(t, 1, 5*time.Second)
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.From != "a@example.org" || strings.Join(m.To, ",") != "b@example.org,c@example.org" {
				t.Errorf("envelope = %q -> %q", m.From, m.To)
			}
			if m.User != tt.wantUser || m.TLS != tt.wantTLS {
				t.Errorf("user, tls = %q, %v; want %q, %v", m.User, m.TLS, tt.wantUser, tt.wantTLS)
			}
			if got := m.Parse(t); got.Subject != "hi" || got.Text != "hello\r\n" {
				t.Errorf("parsed subject %q text %q", got.Subject, got.Text)
			}
		})
	}
}

func TestServerRequiresAuth(t *testing.T) {
	s := Start(t, Options{Username: "u", Password: "p"})
	if err := send(t, s, "", nil, "a@example.org", []string{"b@example.org"}, simple); err == nil || !strings.HasPrefix(err.Error(), "502") {
		t.Errorf("send without auth: err = %v, want 502", err)
	}
	if err := send(t, s, "", smtp.PlainAuth("", "u", "wrong", "127.0.0.1"), "a@example.org", []string{"b@example.org"}, simple); err == nil || !strings.HasPrefix(err.Error(), "535") {
		t.Errorf("send with a wrong password: err = %v, want 535", err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages recorded, want 0", n)
	}
}

func TestServerFailFirst(t *testing.T) {
	s := Start(t, Options{FailFirst: 2})
	for i := range 2 {
		err := send(t, s, "", nil, "a@example.org", []string{"b@example.org"}, simple)
		if err == nil || !strings.HasPrefix(err.Error(), "451") {
			t.Fatalf("attempt %d: err = %v, want 451", i+1, err)
		}
	}
	if err := send(t, s, "", nil, "a@example.org", []string{"b@example.org"}, simple); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	if got := len(s.WaitFor(t, 1, 5*time.Second)); got != 1 {
		t.Errorf("%d messages, want 1", got)
	}
	if got := s.Refused(); got != 2 {
		t.Errorf("Refused() = %d, want 2", got)
	}
}

func TestParseNestedMultipart(t *testing.T) {
	raw := strings.ReplaceAll(`From: a@example.org
To: b@example.org
Subject: =?UTF-8?b?44CQ5oSP6KeB5rGH5oC744CR?= =?UTF-8?q?_test?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=OUTER

--OUTER
Content-Type: multipart/alternative; boundary=INNER

--INNER
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

=E6=84=8F=E8=A7=81 a very long line that was wrapped by the encoder with a so=
ft break
--INNER
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: base64

PHA+5oSP6KeBPC9wPg==
--INNER--
--OUTER
Content-Type: text/csv; charset=utf-8
Content-Disposition: attachment; filename*=UTF-8''%E6%84%8F%E8%A7%81.csv
Content-Transfer-Encoding: base64

77u/YSxiDQox
LDINCg==
--OUTER--
`, "\n", "\r\n")
	p, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "【意见汇总】 test" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if want := "意见 a very long line that was wrapped by the encoder with a soft break"; p.Text != want {
		t.Errorf("Text = %q, want %q", p.Text, want)
	}
	if p.HTML != "<p>意见</p>" {
		t.Errorf("HTML = %q", p.HTML)
	}
	if len(p.Attachments) != 1 {
		t.Fatalf("%d attachments, want 1", len(p.Attachments))
	}
	a := p.Attachments[0]
	if a.Filename != "意见.csv" || a.ContentType != "text/csv" || a.Params["charset"] != "utf-8" {
		t.Errorf("attachment = %q %q %v", a.Filename, a.ContentType, a.Params)
	}
	if want := "\xEF\xBB\xBFa,b\r\n1,2\r\n"; string(a.Data) != want {
		t.Errorf("attachment data = %q, want %q", a.Data, want)
	}
}

// TestParseEmailPackage reads what jordan-wright/email writes, the library consult
// sends with.
func TestParseEmailPackage(t *testing.T) {
	e := email.NewEmail()
	e.From = "consult <noreply@example.org>"
	e.To = []string{"bureau@example.org"}
	e.Subject = "【意见汇总】关于《办法》（截止 2026-12-01 18:00）"
	e.Text = []byte("正文 text\n")
	e.HTML = []byte("<p>正文</p>")
	csv := append([]byte("\xEF\xBB\xBF"), bytes.Repeat([]byte("回执,意见\r\n"), 50)...)
	if _, err := e.Attach(bytes.NewReader(csv), "d-1-comments.csv", "text/csv; charset=utf-8"); err != nil {
		t.Fatal(err)
	}
	raw, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The quoted-printable writer turns line ends into CR LF, as RFC 2045 wants.
	if p.Subject != e.Subject || p.Text != "正文 text\r\n" || p.HTML != string(e.HTML) {
		t.Errorf("parsed %q / %q / %q", p.Subject, p.Text, p.HTML)
	}
	if len(p.Attachments) != 1 || p.Attachments[0].Filename != "d-1-comments.csv" || !bytes.Equal(p.Attachments[0].Data, csv) {
		t.Errorf("attachments = %+v", p.Attachments)
	}
}

// TestStopBeforeServe ends tests right after Start, before the server's
// goroutine may have begun to accept: cleanup must not hang.
func TestStopBeforeServe(t *testing.T) {
	for i := range 50 {
		t.Run(fmt.Sprint(i), func(t *testing.T) { Start(t, Options{}) })
	}
}
