package comments

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor is a pagination position that is not a stream id.
var ErrBadCursor = errors.New("comments: bad page cursor")

// Digest is the receipt's SHA-256, over a canonical encoding of the comment as
// recorded: a version line, the code, the time received (UTC, milliseconds) and
// the comment's entry as stored in the record, byte for byte:
//
//	"consult receipt v2\n" code "\n" 2006-01-02T15:04:05.000Z "\n" entry JSON
//
// The entry holds every non-personal field (its format version, the code, the
// draft, the section, the text, the category, the consent to publish the name)
// and, for the name and contact, only a salted commitment whose salt is erased
// with them: a changed name is detected while it exists, and erasing it breaks
// no receipt.
func Digest(code string, receivedAt time.Time, entry []byte) string {
	h := sha256.New()
	h.Write([]byte("consult receipt v2\n"))
	h.Write([]byte(code))
	h.Write([]byte{'\n'})
	h.Write(receivedAt.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z"))
	h.Write([]byte{'\n'})
	h.Write(entry)
	return hex.EncodeToString(h.Sum(nil))
}

// Crockford's base32: no I, L, O, U, so a code read aloud or retyped survives.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewCode returns "<ref>-XXXXX-XXXXX": the draft's ref, then 50 random bits.
func NewCode(ref int64) (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	out := make([]byte, 0, 11)
	for i, x := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, codeAlphabet[x&31])
	}
	return strconv.FormatInt(ref, 10) + "-" + string(out), nil
}

// ParseCode normalizes a receipt code as a person may type it (lower case, spaces,
// O for 0, I or L for 1) and returns it with its draft ref.
func ParseCode(in string) (code string, ref int64, ok bool) {
	in = strings.ToUpper(strings.Join(strings.Fields(in), ""))
	refStr, rest, found := strings.Cut(in, "-")
	if !found || len(refStr) == 0 || len(refStr) > 12 {
		return "", 0, false
	}
	ref, err := strconv.ParseInt(refStr, 10, 64)
	if err != nil || ref <= 0 {
		return "", 0, false
	}
	rest = strings.ReplaceAll(rest, "-", "")
	if len(rest) != 10 {
		return "", 0, false
	}
	b := []byte(rest)
	for i, c := range b {
		switch c {
		case 'O':
			b[i] = '0'
		case 'I', 'L':
			b[i] = '1'
		}
		if !strings.ContainsRune(codeAlphabet, rune(b[i])) {
			return "", 0, false
		}
	}
	return strconv.FormatInt(ref, 10) + "-" + string(b[:5]) + "-" + string(b[5:]), ref, true
}
