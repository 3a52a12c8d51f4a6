package accounts

import (
	"context"
	"fmt"

	"github.com/alexedwards/argon2id"
)

// HashParams are argon2id's costs for new hashes. A stored hash carries the
// costs it was made with, so raising them later leaves old hashes working.
type HashParams struct {
	// Memory in KiB, Iterations, and Parallelism (threads).
	Memory      uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultHashParams follow RFC 9106's second recommendation (64 MiB, three
// passes) with one lane: a login costs a few tens of milliseconds of one core,
// and the memory is what makes a stolen hash dear to guess.
var DefaultHashParams = HashParams{Memory: 64 * 1024, Iterations: 3, Parallelism: 1}

// Hasher hashes and checks passwords with argon2id (RFC 9106), a bounded
// number at a time: each one takes Memory, and a burst of logins must not take
// the machine's.
type Hasher struct {
	p     argon2id.Params
	slots chan struct{}
	// dummy is a hash of nothing in particular, checked when the user does not
	// exist, so that a wrong name takes as long as a wrong password.
	dummy string
}

// NewHasher returns a Hasher with params (zero: DefaultHashParams) that runs
// at most concurrent hashes at once (zero: 2).
func NewHasher(params HashParams, concurrent int) (*Hasher, error) {
	if params.Memory == 0 {
		params = DefaultHashParams
	}
	if concurrent <= 0 {
		concurrent = 2
	}
	h := &Hasher{p: argon2id.Params{Memory: params.Memory, Iterations: params.Iterations,
		Parallelism: max(1, params.Parallelism), SaltLength: 16, KeyLength: 32}, slots: make(chan struct{}, concurrent)}
	d, err := argon2id.CreateHash("consult: no such user", &h.p)
	if err != nil {
		return nil, fmt.Errorf("accounts: hasher: %w", err)
	}
	h.dummy = d
	return h, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hash returns the PHC-encoded argon2id hash of password. It waits for a slot
// until ctx ends.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("accounts: hash: %w", err)
	}
	defer func() { <-h.slots }()
	s, err := argon2id.CreateHash(password, &h.p)
	if err != nil {
		return "", fmt.Errorf("accounts: hash: %w", err)
	}
	return s, nil
}

// Check reports whether password matches hash (in constant time). An empty
// hash (no such user) is checked against a dummy, so that it takes as long
// and reports false.
func (h *Hasher) Check(ctx context.Context, password, hash string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, fmt.Errorf("accounts: check password: %w", err)
	}
	defer func() { <-h.slots }()
	known := hash != ""
	if !known {
		hash = h.dummy
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil {
		return false, fmt.Errorf("accounts: check password: %w", err)
	}
	return ok && known, nil
}
