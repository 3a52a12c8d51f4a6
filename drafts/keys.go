package drafts

import "strconv"

// Every key of one draft carries the hash tag {id}, so that a draft's keys share a
// Redis Cluster slot and one script may touch them all. Other packages keep their
// per-draft keys under the same tag.

// HashKey is the draft's hash. Its fields opens_ms and closes_ms (Unix milliseconds)
// are read by the comment intake script, which decides the window by Redis's clock.
func HashKey(id string) string { return "consult:{" + id + "}:draft" }

// Fields of the draft hash that other packages' scripts read.
const (
	FieldOpensMs  = "opens_ms"
	FieldClosesMs = "closes_ms"
)

const (
	// indexByOpen lists every draft id, scored by opens_ms: the public list.
	indexByOpen = "consult:drafts:by-open"
	// indexByClose lists every draft id, scored by closes_ms: the digest scheduler's.
	indexByClose = "consult:drafts:by-close"
	// refCounter hands out the short numbers that receipt codes start with.
	refCounter = "consult:drafts:ref-seq"
)

func refKey(ref int64) string { return "consult:drafts:ref:" + strconv.FormatInt(ref, 10) }
