package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jordan-wright/email"
)

// Mailer delivers one message to the recipients in its To, Cc and Bcc. When ctx
// ends, the delivery is abandoned and Send returns an error.
type Mailer interface {
	Send(ctx context.Context, e *email.Email) error
}

// Email composes the message for one recipient. messageID is set explicitly (see
// MessageID) so that a digest sent again after a crash carries the same id and
// the recipient's mail client can tell it is the same message.
func (r Rendered) Email(from, to, messageID string, date time.Time) *email.Email {
	e := email.NewEmail()
	e.From = from
	e.To = []string{to}
	// Encoded here, in base64 words: the library would use Q-encoding, which is
	// three times as long for Chinese and passes a header line's 998 characters
	// for a long title. Already-encoded ASCII goes through the library untouched.
	e.Subject = mime.BEncoding.Encode("UTF-8", r.Subject)
	e.Text = r.Text
	e.HTML = r.HTML
	e.Headers.Set("Message-Id", messageID)
	e.Headers.Set("Date", date.Format(time.RFC1123Z))
	// RFC 3834: no vacation auto-replies to a machine's message.
	e.Headers.Set("Auto-Submitted", "auto-generated")
	if r.CSV != nil {
		e.Attachments = append(e.Attachments, &email.Attachment{
			Filename:    r.CSVFilename,
			ContentType: "text/csv; charset=utf-8",
			Header:      textproto.MIMEHeader{},
			Content:     r.CSV,
		})
	}
	return e
}

// MessageID returns "<digest.{draftID}.{job}.{hash of recipient}@{host of from}>":
// the same for the same digest to the same recipient, whichever replica sends it
// and however often. The recipient is hashed so that the id, which mail systems
// log and forward freely, does not carry the address.
func MessageID(draftID, job, recipient, from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("notify: message id: from address %q: %w", from, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 || at == len(a.Address)-1 {
		return "", fmt.Errorf("notify: message id: from address %q has no domain", from)
	}
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(recipient))))
	return fmt.Sprintf("<digest.%s.%s.%s@%s>", draftID, job, hex.EncodeToString(sum[:8]), a.Address[at+1:]), nil
}

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	// URL is smtp://[user:password@]host[:port], which upgrades with STARTTLS
	// whenever the server offers it (port 25 when none is given), or
	// smtps://[user:password@]host[:port], TLS from the first byte (port 465).
	// Without a user, no AUTH is attempted. net/smtp refuses to send the password
	// over an unencrypted connection to any host but localhost.
	URL string
	// TLS, when set, replaces the default client configuration (system roots,
	// the URL's host as server name); tests use it to trust their own certificate.
	TLS *tls.Config
	// Timeout bounds one delivery, from dialling to QUIT; zero means 30s.
	Timeout time.Duration
	// HelloName is the name given in EHLO; empty means "localhost".
	HelloName string
}

// String shows the configuration with the password replaced by "xxxxx", so that
// it can be logged.
func (c SMTPConfig) String() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "(unparsable SMTP URL)"
	}
	s := u.Redacted()
	if c.Timeout > 0 {
		s += " timeout=" + c.Timeout.String()
	}
	return s
}

// SMTPMailer delivers each message over its own connection: digests are few, and
// a connection that lives only as long as one message needs no keep-alive logic.
type SMTPMailer struct {
	cfg      SMTPConfig
	addr     string // host:port
	host     string
	implicit bool // smtps
	auth     smtp.Auth
	timeout  time.Duration
	hello    string
}

// NewSMTPMailer checks the configuration; it does not connect.
func NewSMTPMailer(c SMTPConfig) (*SMTPMailer, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse's error repeats the whole URL, password included: keep only
		// its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("notify: smtp url: %w", err)
	}
	m := &SMTPMailer{cfg: c, host: u.Hostname(), timeout: c.Timeout, hello: c.HelloName}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "25"
		}
	case "smtps":
		m.implicit = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("notify: smtp url %s: scheme must be smtp or smtps", c)
	}
	if m.host == "" {
		return nil, fmt.Errorf("notify: smtp url %s: no host", c)
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pass, m.host)
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	if m.hello == "" {
		m.hello = "localhost"
	}
	return m, nil
}

// String is the configuration with the password redacted.
func (m *SMTPMailer) String() string { return m.cfg.String() }

// Send delivers e. It speaks SMTP itself over net/smtp, using jordan-wright/email
// only to compose the message: that package's own senders take no context and set
// no deadline, so a stalled server would hold a digest's lease and the process's
// shutdown for as long as the TCP connection lived.
func (m *SMTPMailer) Send(ctx context.Context, e *email.Email) error {
	from, to, err := envelope(e)
	if err != nil {
		return err
	}
	raw, err := e.Bytes()
	if err != nil {
		return fmt.Errorf("notify: compose message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	if err := m.deliver(ctx, from, to, raw); err != nil {
		// The connection's deadline is the context's, and may fire a moment
		// before the context notices: name the cause either way.
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w: %w", cerr, err)
		} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return fmt.Errorf("notify: smtp send to %s via %s: %w", strings.Join(to, ", "), m.addr, err)
	}
	return nil
}

func (m *SMTPMailer) deliver(ctx context.Context, from string, to []string, raw []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return err
	}
	// The deadline bounds every read and write; closing the connection when ctx
	// ends abandons the delivery at once, before the deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if m.implicit {
		tc := tls.Client(conn, m.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(m.hello); err != nil {
		return err
	}
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConfig()); err != nil {
				return err
			}
		}
	}
	if m.auth != nil {
		// Sending without the configured credentials would only be refused
		// later, less clearly.
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("server offers no AUTH but the URL has credentials")
		}
		if err := c.Auth(m.auth); err != nil {
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
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The message is accepted once DATA is answered; a failed QUIT changes
	// nothing, and reporting it would make the caller send the message again.
	_ = c.Quit()
	return nil
}

func (m *SMTPMailer) tlsConfig() *tls.Config {
	var c *tls.Config
	if m.cfg.TLS != nil {
		c = m.cfg.TLS.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = m.host
	}
	return c
}

// envelope returns the SMTP sender and recipients of e.
func envelope(e *email.Email) (from string, to []string, err error) {
	sender := e.Sender
	if sender == "" {
		sender = e.From
	}
	a, err := mail.ParseAddress(sender)
	if err != nil {
		return "", nil, fmt.Errorf("notify: sender %q: %w", sender, err)
	}
	for _, list := range [][]string{e.To, e.Cc, e.Bcc} {
		for _, r := range list {
			ra, err := mail.ParseAddress(r)
			if err != nil {
				return "", nil, fmt.Errorf("notify: recipient %q: %w", r, err)
			}
			to = append(to, ra.Address)
		}
	}
	if len(to) == 0 {
		return "", nil, errors.New("notify: message has no recipient")
	}
	return a.Address, to, nil
}

// Outbox is the Mailer used when no SMTP server is configured: it writes each
// message as an .eml file that any mail client opens, and logs where. A message
// sent again (same Message-ID) replaces its file, so the outbox holds one file
// per message. Files are readable by the owner only: a bureau's copy holds
// commenters' contacts.
type Outbox struct {
	dir string
	log *slog.Logger
}

// NewOutbox creates dir if needed. A nil logger means slog.Default().
func NewOutbox(dir string, log *slog.Logger) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: outbox: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Outbox{dir: dir, log: log}, nil
}

// Send writes e to the outbox atomically (a temporary file renamed into place).
func (o *Outbox) Send(ctx context.Context, e *email.Email) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, _, err := envelope(e); err != nil {
		return err
	}
	raw, err := e.Bytes()
	if err != nil {
		return fmt.Errorf("notify: compose message: %w", err)
	}
	name := outboxName(e.Headers.Get("Message-Id"))
	path := filepath.Join(o.dir, name)
	f, err := os.CreateTemp(o.dir, ".tmp-*.eml") // mode 0600
	if err != nil {
		return fmt.Errorf("notify: outbox: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("notify: outbox: %w", err)
	}
	o.log.Info("notify: message written to outbox", "path", path, "to", strings.Join(e.To, ", "), "message_id", e.Headers.Get("Message-Id"))
	return nil
}

// outboxName turns a Message-ID into a file name; a message without one gets a
// random name.
func outboxName(messageID string) string {
	id := strings.Trim(messageID, "<> ")
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '@':
			return r
		}
		return '_'
	}, id)
	return strings.TrimLeft(clean, ".") + ".eml"
}
