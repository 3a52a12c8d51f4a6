// Package smtptest runs a real SMTP server inside a test process: it records every
// message it accepts, can refuse the first deliveries with a temporary error, can
// require AUTH PLAIN and can speak STARTTLS or implicit TLS with a throwaway
// certificate. Parse reads a recorded message back as a mail client would.
package smtptest

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a test server. The zero value accepts every message, offers no
// AUTH and no TLS.
type Options struct {
	// FailFirst refuses the first FailFirst messages with "451 4.3.0" after their
	// DATA has been read, as a busy or greylisting server does; the client sees a
	// temporary error and nothing is recorded.
	FailFirst int
	// Username and Password, when Username is set, make AUTH PLAIN required
	// before MAIL. AUTH is allowed without TLS (AllowInsecureAuth) because the
	// server only listens on 127.0.0.1.
	Username, Password string
	// StartTLS offers STARTTLS with a self-signed certificate for 127.0.0.1.
	StartTLS bool
	// ImplicitTLS makes the listener speak TLS from the first byte (smtps).
	ImplicitTLS bool
	// DataDelay is how long the server waits after reading a message before it
	// answers, to let tests act while a delivery is in flight.
	DataDelay time.Duration
}

// Message is one accepted delivery.
type Message struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Data []byte   // the message as received, headers and body
	User string   // the AUTH PLAIN user name; empty without AUTH
	TLS  bool     // whether the session was encrypted
}

// Parse parses the message as MIME; see Parse.
func (m Message) Parse(t testing.TB) *Parsed {
	t.Helper()
	p, err := Parse(m.Data)
	if err != nil {
		t.Fatalf("smtptest: parse message to %v: %v", m.To, err)
	}
	return p
}

// Server is an SMTP server owned by one test.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	opts      Options
	srv       *smtp.Server
	clientTLS *tls.Config

	mu      sync.Mutex
	msgs    []Message
	refused int
	changed chan struct{} // closed and replaced whenever msgs or refused change
}

// Start starts a server on a free port of 127.0.0.1 and stops it when the test
// ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{opts: o, changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smtptest.local"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = discardLogger{}
	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if o.StartTLS || o.ImplicitTLS {
		serverTLS, clientTLS, err := selfSigned()
		if err != nil {
			_ = l.Close()
			t.Fatalf("smtptest: certificate: %v", err)
		}
		s.clientTLS = clientTLS
		if o.ImplicitTLS {
			l = tls.NewListener(l, serverTLS)
		} else {
			srv.TLSConfig = serverTLS
		}
	}
	s.srv = srv
	s.Addr = l.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close only closes the listeners Serve has registered: one that has not
		// got that far yet would accept forever, so close ours too.
		_ = l.Close()
		<-served
	})
	return s
}

// ClientTLSConfig returns a client configuration that trusts the server's
// certificate, or nil when the server has no TLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Messages returns a copy of the messages accepted so far, in order of arrival.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	copy(out, s.msgs)
	return out
}

// Refused returns how many messages were refused by FailFirst.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// WaitFor waits until at least n messages were accepted and returns them; it
// fails the test after timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: %d message(s) after %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// notifyLocked wakes WaitFor; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{srv: s, tls: isTLS}, nil
}

// session implements smtp.Session and smtp.AuthSession.
type session struct {
	srv  *Server
	tls  bool
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.srv.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.srv.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.srv.opts.Username || password != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if d := ss.srv.opts.DataDelay; d > 0 {
		time.Sleep(d)
	}
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if s.refused < s.opts.FailFirst {
		s.refused++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "smtptest: try again later"}
	}
	s.msgs = append(s.msgs, Message{
		From: ss.from,
		To:   append([]string(nil), ss.to...),
		Data: data,
		User: ss.user,
		TLS:  ss.tls,
	})
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

// discardLogger keeps the server's connection errors (a client that hangs up,
// a refused handshake) out of test output; tests check outcomes instead.
type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}
