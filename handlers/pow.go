package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// A proof of work is asked for on drafts whose bureau switched it on
// (drafts.Limits.PoWBits): the form carries a challenge, the page's script finds
// a nonce such that SHA-256(challenge ":" nonce) starts with that many zero
// bits, and the server checks it with one hash. It costs a person a second or
// two of a phone's time once, and a script that posts thousands the same for
// every comment.
//
// The challenge is stateless, so that any replica can check one another issued:
//
//	v1.<draft id>.<bits>.<expires, Unix seconds>.<id: 12 random bytes>.<MAC>
//
// base64url without padding for the id and the MAC (HMAC-SHA256 of everything
// before it, cut to 16 bytes, keyed with the service's secret). Only the use of
// a proof is recorded (Proofs.Spend), under its id, until it expires.

// challengeTTL is how long a challenge may be used: a person may take an hour
// over a long comment, and the form that comes back after an expired one keeps
// the text and carries a fresh challenge.
const challengeTTL = 2 * time.Hour

// maxNonce bounds the nonce a proof may carry (decimal digits).
const maxNonce = 20

// proof is a checked challenge.
type proof struct {
	draftID string
	bits    int
	expires time.Time
	id      string
}

// proofError is a comment refused for its proof of work: it names the draft and
// the difficulty, so that the answer can carry a fresh challenge.
type proofError struct {
	reason  string // missing, malformed, forged, other_draft, expired, too_easy, wrong, used
	draftID string
	bits    int
}

func (e *proofError) Error() string { return "handlers: proof of work " + e.reason }

// newChallenge issues a challenge for a comment on draftID.
func (s *server) newChallenge(draftID string, bits int) (string, time.Time) {
	var id [12]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	exp := s.Now().Add(challengeTTL).Truncate(time.Second)
	body := "v1." + draftID + "." + strconv.Itoa(bits) + "." + strconv.FormatInt(exp.Unix(), 10) + "." +
		base64.RawURLEncoding.EncodeToString(id[:])
	return body + "." + s.challengeMAC(body), exp
}

func (s *server) challengeMAC(body string) string {
	m := hmac.New(sha256.New, s.keys.pow)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// checkProof verifies a solved challenge for a comment on draftID that asks for
// bits. It does not spend it (see Proofs). Errors: *proofError.
func (s *server) checkProof(draftID string, bits int, challenge, nonce string) (proof, error) {
	fail := func(reason string) (proof, error) {
		return proof{}, &proofError{reason: reason, draftID: draftID, bits: bits}
	}
	if challenge == "" || nonce == "" {
		return fail("missing")
	}
	if len(challenge) > 200 || len(nonce) > maxNonce || strings.Trim(nonce, "0123456789") != "" {
		return fail("malformed")
	}
	i := strings.LastIndexByte(challenge, '.')
	if i < 0 {
		return fail("malformed")
	}
	body, mac := challenge[:i], challenge[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.challengeMAC(body))) {
		return fail("forged")
	}
	f := strings.Split(body, ".")
	if len(f) != 5 || f[0] != "v1" {
		return fail("malformed")
	}
	if f[1] != draftID {
		return fail("other_draft")
	}
	n, err1 := strconv.Atoi(f[2])
	exp, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return fail("malformed")
	}
	p := proof{draftID: draftID, bits: n, expires: time.Unix(exp, 0), id: f[4]}
	if !s.Now().Before(p.expires) {
		return fail("expired")
	}
	// A challenge issued before the bureau raised the difficulty is refused; one
	// issued harder than asked is fine.
	if n < bits {
		return fail("too_easy")
	}
	if leadingZeroBits(sha256.Sum256([]byte(challenge+":"+nonce))) < n {
		return fail("wrong")
	}
	return p, nil
}

func leadingZeroBits(h [sha256.Size]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// proofJSON is a challenge as the API hands it out.
type proofJSON struct {
	Challenge string    `json:"challenge"`
	Bits      int       `json:"bits"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *server) challengeJSON(e *proofError) *proofJSON {
	ch, exp := s.newChallenge(e.draftID, e.bits)
	return &proofJSON{Challenge: ch, Bits: e.bits, ExpiresAt: exp.UTC()}
}

// proofDetails explain a refused proof to an API client.
var proofDetails = map[string]string{
	"missing":     "this draft asks for a proof of work: send proof.challenge (from this answer's proof) and a proof.nonce such that SHA-256(challenge \":\" nonce) starts with proof.bits zero bits",
	"malformed":   "the proof is malformed: the nonce is at most 20 decimal digits",
	"forged":      "the challenge was not issued by this service",
	"other_draft": "the challenge is for another draft",
	"expired":     "the challenge has expired",
	"too_easy":    "the challenge asks for fewer bits than this draft now does",
	"wrong":       "SHA-256(challenge \":\" nonce) does not start with enough zero bits",
	"used":        "this proof has been used already",
}

// errProofUsed is a proof spent before, as a *proofError for draftID.
func errProofUsed(draftID string, bits int) error {
	return &proofError{reason: "used", draftID: draftID, bits: bits}
}
