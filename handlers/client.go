package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// A client is named, wherever it is remembered, by a keyed hash of its address:
// rate-limit keys and duplicate flags by clientID (stable while the secret is),
// the request log by a hash whose key changes every day (logClient). The address
// itself is never stored or logged.

// secrets are the keys derived from Config.Secret, one per purpose, so that no
// hash made for one purpose can be matched with one made for another.
type secrets struct {
	client *keyedHash // clientID
	pow    []byte     // signs proof-of-work challenges
	log    []byte     // derives the request log's day keys
	day    atomic.Pointer[dayKey]
}

func newSecrets(secret []byte) *secrets {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("consult " + purpose))
		return m.Sum(nil)
	}
	return &secrets{client: newKeyedHash(derive("client")), pow: derive("proof of work"), log: derive("request log")}
}

// keyedHash is HMAC-SHA256 under one key, with its states pooled: made anew for
// every request it would cost the intake two allocations and a key schedule.
type keyedHash struct{ pool sync.Pool }

func newKeyedHash(key []byte) *keyedHash {
	return &keyedHash{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// sum appends the first n bytes of the MAC of b to dst, in hex.
func (k *keyedHash) sum(dst, b []byte, n int) []byte {
	m := k.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(b)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	k.pool.Put(m)
	return hex.AppendEncode(dst, out[:n])
}

// dayKey is the request log's key for one day (in the configured zone): the
// same client gets the same hash all day, another one the next day, and without
// the secret no hash can be tied to an address.
type dayKey struct {
	date string
	h    *keyedHash
}

func (s *secrets) logKey(now time.Time) *keyedHash {
	date := now.Format(time.DateOnly)
	if d := s.day.Load(); d != nil && d.date == date {
		return d.h
	}
	m := hmac.New(sha256.New, s.log)
	m.Write([]byte(date))
	d := &dayKey{date: date, h: newKeyedHash(m.Sum(nil))}
	s.day.Store(d)
	return d.h
}

// clientAddr is what names one client: an IPv4 address, or the /64 prefix of an
// IPv6 one, since a phone or a home is given a /64 and picks addresses in it at
// will (privacy extensions; a script can take a new one for every request).
func clientAddr(ip string) []byte {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return []byte(ip) // nothing better is known; still hashed
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	p, _ := a.Prefix(64)
	b := p.Addr().As16()
	return b[:8]
}

// clientID is the request's client as rate limits and duplicate flags know it:
// 128 bits of a keyed hash of clientAddr, in hex. Made once per request.
func (s *server) clientID(c echo.Context) string {
	if id, ok := c.Get("client").(string); ok {
		return id
	}
	id := string(s.keys.client.sum(make([]byte, 0, 32), clientAddr(c.RealIP()), 16))
	c.Set("client", id)
	return id
}

// logClient is the request's client as the request log shows it: 64 bits of a
// hash under the day's key, enough to follow one client through a day.
func (s *server) logClient(dst []byte, c echo.Context, now time.Time) []byte {
	return s.keys.logKey(now).sum(dst, clientAddr(c.RealIP()), 8)
}

// clientIP returns the extractor of the client's address (c.RealIP) and a test
// of whether an address is a trusted proxy. With no trusted proxy the client is
// the connection's peer and X-Forwarded-For is ignored: anyone can write it.
// With some, X-Forwarded-For is read from the right, past the trusted proxies,
// and only when the peer itself is one of them.
func clientIP(trusted []*net.IPNet) (echo.IPExtractor, func(ip string) bool) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), func(string) bool { return false }
	}
	// echo trusts loopback and private networks by default: only the configured ones here.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	isTrusted := func(ip string) bool {
		a := net.ParseIP(ip)
		for _, n := range trusted {
			if a != nil && n.Contains(a) {
				return true
			}
		}
		return false
	}
	return echo.ExtractIPFromXFFHeader(opts...), isTrusted
}

// directIP is the connection's peer.
func directIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
