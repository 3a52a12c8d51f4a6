package comments

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// ErrBadCursor is a pagination position that is not a stream id.
var ErrBadCursor = errors.New("comments: bad page cursor")

// Digest is the receipt's SHA-256: of the code, a newline and the comment's JSON as
// recorded in the intake stream, so that a receipt binds its code to the exact text.
func Digest(code string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte(code))
	h.Write([]byte{'\n'})
	h.Write(payload)
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
