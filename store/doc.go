// Package store keeps drafts and comments in Redis: the one package, with notify's
// scheduler state, that speaks to Redis, so that the domain packages (drafts,
// comments) stay plain rules and the web layer never reaches the Redis client.
//
// It owns the key schema (keys.go: one hash tag per draft, so a draft's keys share
// a Cluster slot), the scripts that change more than one key, the comment intake
// (Comments.Submit: one script that decides the window by Redis's clock and issues
// the receipt), the intake stream that is the record of every comment, and the
// workers that settle it (Worker).
package store
