package comments

import "consult/drafts"

// Per-draft keys carry the draft's hash tag {id} (see drafts/keys.go), so the intake
// and processing scripts touch keys of a single Cluster slot.

// intakeStream is the record of every comment on a draft, in the order Redis
// received them. Entries are acknowledged once settled but never trimmed.
func intakeStream(id string) string { return "consult:{" + id + "}:intake" }
func deadStream(id string) string   { return "consult:{" + id + "}:dead" }
func idemKey(id, key string) string { return "consult:{" + id + "}:idem:" + key }
func receiptsHash(id string) string { return "consult:{" + id + "}:receipts" }
func commentsHash(id string) string { return "consult:{" + id + "}:comments" }
func orderList(id string) string    { return "consult:{" + id + "}:order" }
func countsHash(id string) string   { return "consult:{" + id + "}:counts" }
func draftHash(id string) string    { return drafts.HashKey(id) }

// activeSet lists the drafts whose intake streams workers read (global, one key).
const activeSet = "consult:intake:active"

// group is the consumer group every consultd process reads intake streams with.
const group = "workers"
