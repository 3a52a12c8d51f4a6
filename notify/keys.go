package notify

// Redis keys of the digest. Per-draft keys carry the hash tag "{<draftID>}" so that
// a draft's keys share one Cluster slot and its scripts may touch them together.
// The global keys are only ever used alone, one command at a time.

const (
	// doneKey is the set of draft ids whose final digest reached every recipient.
	doneKey = "consult:digest:done"
	// interimKey is the sorted set of pending interim requests: member
	// "<draftID>:<job>", score the request time (unix ms).
	interimKey = "consult:digest:interim"
)

// leaseKey holds the token of the replica working on a draft's digests.
func leaseKey(draftID string) string { return "consult:{" + draftID + "}:digest:lease" }

// sentKey is the hash recipient -> time sent (RFC 3339, UTC) of one digest job.
func sentKey(draftID, job string) string { return "consult:{" + draftID + "}:digest:" + job }

// retryKey is the hash recipient -> "<failed attempts> <next attempt, unix ms>"
// of one digest job.
func retryKey(draftID, job string) string {
	return "consult:{" + draftID + "}:digest:" + job + ":retry"
}

// rangeKey is the hash that fixes what one digest job covers, so that every
// build of it, on any replica, gives the same bytes: fields until (the newest
// stream entry covered), generated_ms and expires_ms (its links'), and settled
// ("1" once every entry up to until is known accepted or rejected).
func rangeKey(draftID, job string) string {
	return "consult:{" + draftID + "}:digest:" + job + ":range"
}

// linkKeyKey holds the key that signs download links when none is configured
// (see LoadLinkKey). Global: it is read alone, once per process start.
const linkKeyKey = "consult:digest:link-key"
