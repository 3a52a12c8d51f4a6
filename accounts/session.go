package accounts

import "time"

// Session is a signed-in browser. Its id is the cookie's value and is never
// stored: the store keeps a hash of it, so that a copy of Redis holds no
// session that works.
type Session struct {
	ID   string
	User string
	// Epoch is the user's session epoch when the session began (User.Epoch).
	Epoch   int64
	Created time.Time
	Seen    time.Time
}

// SessionPolicy is how long sessions last.
type SessionPolicy struct {
	// Idle ends a session not used for this long; zero means 30 minutes.
	Idle time.Duration
	// Absolute ends a session this long after sign-in, used or not; zero
	// means 12 hours (a working day).
	Absolute time.Duration
}

func (p SessionPolicy) withDefaults() SessionPolicy {
	if p.Idle <= 0 {
		p.Idle = 30 * time.Minute
	}
	if p.Absolute <= 0 {
		p.Absolute = 12 * time.Hour
	}
	return p
}

// Expires is when s ends unless it is used again before.
func (p SessionPolicy) Expires(s Session) time.Time {
	p = p.withDefaults()
	idle, abs := s.Seen.Add(p.Idle), s.Created.Add(p.Absolute)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// Check reports whether s still lets u in at now: ErrUnauthenticated when it
// has expired (idle or absolute), when u is disabled, or when u's epoch moved
// on since it began (a password change, a disabling).
func (p SessionPolicy) Check(s Session, u User, now time.Time) error {
	switch {
	case s.User != u.Name, u.Disabled, s.Epoch != u.Epoch, !now.Before(p.Expires(s)):
		return ErrUnauthenticated
	}
	return nil
}

// Touch is how often a session's last use is written: reading a page is not
// worth a write to Redis every time, and idle expiry is this much coarser.
const Touch = time.Minute
