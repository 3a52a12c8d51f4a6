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
