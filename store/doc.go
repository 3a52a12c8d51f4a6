// Package store keeps drafts and comments in Redis: the one package, with notify's
// scheduler state, that speaks to Redis, so that the domain packages (drafts,
// comments) stay plain rules and the web layer never reaches the Redis client.
//
// It owns the key schema (keys.go: one hash tag per draft, so a draft's keys share
// a Cluster slot), the scripts that change more than one key, the comment intake
// (Comments.Submit: one script that decides the window by Redis's clock and issues
// the receipt), the intake stream that is the record of every comment, the
// workers that settle it (Worker), and the records of consultations and staff
// (record.go: appended to inside the script of each change, read by Records).
package store
