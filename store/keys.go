package store

import "strconv"

// Every key of one draft carries the hash tag {id}, so that a draft's keys share a
// Redis Cluster slot and one script may touch them all. The notify package keeps
// its per-draft keys under the same tag.

// draftHash is the draft's hash. Its fields opens_ms and closes_ms (Unix
// milliseconds) are read by the intake script, which decides the window by
// Redis's clock.
func draftHash(id string) string { return "consult:{" + id + "}:draft" }

// intakeStream is the record of every comment on a draft, in the order Redis
// received them. Entries are acknowledged once settled but never trimmed.
func intakeStream(id string) string { return "consult:{" + id + "}:intake" }

// receiptsHash maps a receipt code to its record (see parseRecord): the
// comment's entry id, or "r|<entry id>" once dead-lettered.
func receiptsHash(id string) string { return "consult:{" + id + "}:receipts" }

// piiHash maps a receipt code to the commenter's name and contact (JSON, with
// the salt of the entry's commitment to them). They are kept out of the intake
// stream, which is never rewritten, so that erasing them is an HDEL here.
func piiHash(id string) string { return "consult:{" + id + "}:pii" }

// dupSet holds a hash of (client, text) for every comment with a known client:
// the same text from the same client again is flagged as a duplicate.
func dupSet(id string) string { return "consult:{" + id + "}:dups" }

func deadStream(id string) string   { return "consult:{" + id + "}:dead" }
func idemKey(id, key string) string { return "consult:{" + id + "}:idem:" + key }
func countsHash(id string) string   { return "consult:{" + id + "}:counts" }

const (
	// indexByOpen lists every draft id, scored by opens_ms: the public list.
	indexByOpen = "consult:drafts:by-open"
	// indexByClose lists every draft id, scored by closes_ms: the digest scheduler's.
	indexByClose = "consult:drafts:by-close"
	// refCounter hands out the short numbers that receipt codes start with.
	refCounter = "consult:drafts:ref-seq"
	// activeSet lists the drafts whose intake streams workers read.
	activeSet = "consult:intake:active"
	// group is the consumer group every consultd process reads intake streams with.
	group = "workers"
)

func refKey(ref int64) string { return "consult:drafts:ref:" + strconv.FormatInt(ref, 10) }

// recordList is the consultation's record: its events (package record), each
// as its canonical bytes, at position seq-1. Only ever appended to, by
// record_append inside the script that makes the change (see record.go).
func recordList(id string) string { return "consult:{" + id + "}:events" }

// staffRecord is the record of users and tokens. Its hash tag cannot be a
// draft's: a draft id has no underscore, so a draft named "staff" keeps a record
// of its own. The keys of users and tokens must carry the same tag, so that one
// script changes them and appends to this record together.
const staffRecord = "consult:{_staff}:events"

// Staff accounts (store/accounts.go, store/sessions.go). Every key carries the
// hash tag {_staff}, so that a script may touch a user, its tokens and the
// indexes together on a Cluster: staff are few, and the slot holds little.

// userHash is one user: role, bureaus (ids, comma-separated), disabled,
// session epoch, password hash (argon2id, PHC string), created_ms, pw_ms.
func userHash(name string) string { return "consult:{_staff}:user:" + name }

// userTokens lists the ids of one user's tokens, revoked ones included.
func userTokens(name string) string { return "consult:{_staff}:user-tokens:" + name }

// tokenHash is one API token: sha256 (of the whole token, hex), user, scope,
// label, created_ms, used_ms, revoked_ms. The token itself is never stored.
func tokenHash(id string) string { return "consult:{_staff}:token:" + id }

// sessionHash is one session, keyed by the SHA-256 of its id (hex): user,
// epoch, created_ms, seen_ms. Its TTL only clears it away; the expiry is
// decided by the injected clock (accounts.SessionPolicy).
func sessionHash(idHash string) string { return "consult:{_staff}:session:" + idHash }

const (
	// usersSet lists every user's name.
	usersSet = "consult:{_staff}:users"
	// tokensSet lists every token's id.
	tokensSet = "consult:{_staff}:tokens"
	// bureausHash maps a bureau's id to its record (JSON: id, name, created_ms).
	bureausHash = "consult:{_staff}:bureaus"
	// bureauNames maps accounts.BureauKey(name) to the bureau's id.
	bureauNames = "consult:{_staff}:bureau-names"
	// bureauSeq hands out bureau ids ("b1", "b2", …).
	bureauSeq = "consult:{_staff}:bureau-seq"
)

// accountFailures counts failed logins on one user's account: n, first_ms,
// until_ms. In the accounts slot, so that the script that locks the account
// records the lockout in the staff record; only an existing user's failures
// are counted, so there are no more of these keys than users.
func accountFailures(name string) string { return "consult:{_staff}:login-failures:" + name }

// clientFailures counts failed logins from one client (its keyed hash), in
// the same fields. Outside the accounts slot: under a guessing attack there may
// be many.
func clientFailures(client string) string { return "consult:login:a:" + client }
