package handlers

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/accounts"
	"consult/store"
)

// logSink collects what the handlers log, for tests that check what is (and
// is not) written.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the lines that contain every one of parts.
func (l *logSink) lines(parts ...string) []string {
	var out []string
	for line := range strings.SplitSeq(l.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// storeConfig is the Config cmd/consultd builds, on the test's Redis: real
// stores, the per-client limits at their defaults, the spent proofs, a secret
// and a logger into sink.
func storeConfig(rdb redis.UniversalClient, now func() time.Time, sink *logSink) (Config, *store.Drafts, *store.Comments) {
	ds := store.NewDrafts(rdb, now)
	cs := store.NewComments(rdb, ds, store.IntakeConfig{})
	as, err := store.NewAccounts(rdb, store.AccountsConfig{Hasher: testHasher, Now: now})
	if err != nil {
		panic(err)
	}
	return Config{Drafts: ds, Comments: cs, Records: store.NewRecords(rdb), Accounts: as, Now: now, Ready: alwaysReady{},
		Limiter: store.NewLimiter(rdb, store.LimiterConfig{}), Proofs: store.NewProofs(rdb),
		Secret: []byte("a test secret of thirty-two bytes"), Logger: sink.logger()}, ds, cs
}

// testHasher hashes passwords cheaply: the tests check behaviour, not cost.
var testHasher = func() *accounts.Hasher {
	h, err := accounts.NewHasher(accounts.HashParams{Memory: 64, Iterations: 1, Parallelism: 1}, 4)
	if err != nil {
		panic(err)
	}
	return h
}()

// hangingProxy stands between the stores and a real Redis and, once frozen,
// passes nothing on: a Redis that hangs (stopped, or its network gone) rather
// than one that refuses connections.
type hangingProxy struct {
	Addr   string
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *hangingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangingProxy{Addr: ln.Addr().String(), ln: ln, thaw: make(chan struct{})}
	close(p.thaw)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		p.freeze(false)
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *hangingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw := p.thaw
			p.mu.Unlock()
			<-thaw
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// freeze stops (true) or resumes (false) the traffic.
func (p *hangingProxy) freeze(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.frozen {
		return
	}
	p.frozen = on
	if on {
		p.thaw = make(chan struct{})
	} else {
		close(p.thaw)
	}
}

// rawHTTP sends req as written on a new connection, then the body parts with
// pause before each, closes its sending side, and returns the response as read.
func rawHTTP(t *testing.T, addr, head string, pause time.Duration, parts ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		time.Sleep(pause) // the trickle itself, not a wait for something to happen
		if _, err := io.WriteString(c, p); err != nil {
			break // the server may have answered and closed already
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, _ := io.ReadAll(c)
	return string(res)
}
