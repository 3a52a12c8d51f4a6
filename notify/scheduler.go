package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jordan-wright/email"
	"github.com/redis/go-redis/v9"

	"consult/comments"
	"consult/drafts"
	"consult/record"
	"consult/store"
)

// draftSource is what the Scheduler needs from the drafts package.
type draftSource interface {
	Get(ctx context.Context, id string) (drafts.Draft, error)
	// ClosedBefore lists the ids of drafts whose window closes at or before t.
	ClosedBefore(ctx context.Context, t time.Time) ([]string, error)
}

// commentSource is what the Scheduler needs from the comments package.
type commentSource interface {
	// Each calls fn with every accepted comment of a draft up to the stream
	// position until, in the order received, a page at a time.
	Each(ctx context.Context, draftID, until string, fn func(comments.Comment) error) error
	// Head returns the position of the newest entry of a draft's record ("0-0"
	// when there is none).
	Head(ctx context.Context, draftID string) (string, error)
	Counts(ctx context.Context, draftID string) (comments.Counts, error)
	// Settled reports whether every comment up to the stream position until
	// has been processed by the workers.
	Settled(ctx context.Context, draftID, until string) (bool, error)
	// WindowClosed reports whether the window is closed by the Redis server's clock.
	WindowClosed(ctx context.Context, draftID string) (bool, error)
}

// finalJob names a draft's final digest; interim digests are "interim-<unix ms>".
const finalJob = "final"

// Config configures a Scheduler. From, LinkKey and Paths are required.
type Config struct {
	// From is the sender, such as "意见征集 <noreply@consult.example.gov.cn>"; its
	// domain also ends every Message-ID.
	From string
	// BaseURL is the public site the digest links to; empty means no link to
	// the draft's page (a download link is then a path alone).
	BaseURL string
	// Paths are the site's paths a digest links to (required).
	Paths Paths
	// Location is the zone the digest shows times in; nil means Asia/Shanghai.
	Location *time.Location
	// Logger receives one line per delivery and per failure; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for choosing drafts, backoff, link expiry and the times
	// recorded and shown; nil means time.Now. Two things do not read it: whether a
	// window is closed (the Redis server's clock decides, see
	// commentSource.WindowClosed) and the lease (Redis expires it).
	Now func() time.Time
	// Interval is the pause between two ticks; zero means 1s.
	Interval time.Duration
	// LeaseTTL is how long a draft stays with a replica that stopped working on it
	// (crashed, or cut off from Redis); zero means 15s. The holder renews it every
	// third of that while it builds and sends, so it may be much shorter than a
	// build or a delivery: it only has to outlast a pause of the holder.
	LeaseTTL time.Duration
	// SendTimeout bounds one delivery; zero means 30s.
	SendTimeout time.Duration
	// RetryBase is the wait before retrying a recipient after a first failure,
	// doubled after each further one; zero means 10s.
	RetryBase time.Duration
	// RetryMax caps the wait between retries; zero means 5 min. Retries never stop:
	// a digest that cannot be delivered is logged at every attempt.
	RetryMax time.Duration
	// MaxBytes is the largest e-mail sent, encoded, headers and all; zero means
	// 10 MB (10^7 bytes). A digest that would be larger is sent as its summary
	// with links to the files (see LinkKey).
	MaxBytes int64
	// LinkKey signs the download links; required, at least MinLinkKey bytes, the
	// same on every replica (see LoadLinkKey).
	LinkKey LinkKey
	// LinkTTL is how long a download link works, from when its job was first
	// built; zero means 30 days.
	LinkTTL time.Duration
	// SpillDir is where digests wait on local disk while they are built; empty
	// means os.TempDir(). Not a tmpfs: it would hold them in memory.
	SpillDir string
}

// Scheduler sends each draft's digest once its window has closed, and interim
// digests on request: one e-mail per recipient, the bureau's copy with contacts
// and the CSV attached, or, when that would pass MaxBytes, its summary with
// links to the files (served by OpenFile). Any number of replicas may run it
// against one Redis (or a Cluster): a per-draft lease, renewed while its holder
// works, lets one replica work on a draft at a time; a job's range is fixed in
// Redis by its first build, so every build of it is the same; and a recipient
// is recorded in Redis as soon as the server accepts the message, so a
// recipient already recorded is never sent the same digest again.
//
// One gap remains, as with any mail sender: a replica that stops between the
// server's acceptance and the recording sends that message again after the
// lease expires. The repeat carries the same Message-ID (see MessageID), so the
// recipient can recognise it.
type Scheduler struct {
	rdb      redis.UniversalClient
	drafts   draftSource
	comments commentSource
	mailer   Mailer
	cfg      Config
	log      *slog.Logger
	builds   chan struct{} // build slots (see acquireBuild)

	sent, failed atomic.Int64
}

// NewScheduler checks the configuration and fills in its defaults. It does not
// touch Redis.
func NewScheduler(rdb redis.UniversalClient, ds draftSource, cs commentSource, m Mailer, cfg Config) (*Scheduler, error) {
	if rdb == nil || ds == nil || cs == nil || m == nil {
		return nil, errors.New("notify: scheduler needs a Redis client, a draft source, a comment source and a mailer")
	}
	if _, err := MessageID("d", finalJob, "r@example.org", cfg.From); err != nil {
		return nil, fmt.Errorf("notify: scheduler: From: %w", err)
	}
	if cfg.Location == nil {
		cfg.Location = defaultLocation()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.Interval, time.Second)
	setDefault(&cfg.SendTimeout, 30*time.Second)
	setDefault(&cfg.LeaseTTL, 15*time.Second)
	setDefault(&cfg.RetryBase, 10*time.Second)
	setDefault(&cfg.RetryMax, 5*time.Minute)
	setDefault(&cfg.LinkTTL, 30*24*time.Hour)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 10_000_000
	}
	if cfg.MaxBytes < 2*mimeAllowance {
		return nil, fmt.Errorf("notify: scheduler: MaxBytes %d is too small for any e-mail", cfg.MaxBytes)
	}
	if cfg.Paths.Draft == nil || cfg.Paths.File == nil {
		return nil, errors.New("notify: scheduler: Paths (the web site's draft and file paths) are required")
	}
	if len(cfg.LinkKey) < MinLinkKey {
		return nil, fmt.Errorf("notify: scheduler: LinkKey must have at least %d bytes", MinLinkKey)
	}
	if cfg.LeaseTTL < 30*time.Millisecond {
		return nil, fmt.Errorf("notify: scheduler: LeaseTTL %v is too short to renew", cfg.LeaseTTL)
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = cfg.RetryBase
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{rdb: rdb, drafts: ds, comments: cs, mailer: m, cfg: cfg, log: log, builds: make(chan struct{}, maxBuilds)}, nil
}

// maxBuilds is how many digests one process builds at once (see acquireBuild).
const maxBuilds = 2

// staleSpills is the age past which a spill directory is taken for a crashed
// build's (see removeStaleSpills): builds take minutes.
const staleSpills = time.Hour

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Stats returns how many digest e-mails were delivered and how many delivery
// attempts failed since the Scheduler was made.
func (s *Scheduler) Stats() (sent, failed int64) { return s.sent.Load(), s.failed.Load() }

// Run works until ctx ends, then returns nil. A delivery under way when ctx ends
// is finished (within SendTimeout) and recorded, so that it is not repeated;
// nothing further starts. Errors from Redis, the sources or the mailer are logged
// and retried on a later tick: they never stop the loop.
func (s *Scheduler) Run(ctx context.Context) error {
	// File times are the system clock's, not Now's.
	if err := removeStaleSpills(s.cfg.SpillDir, staleSpills, time.Now()); err != nil {
		s.log.Warn("notify: remove a crashed build's files", "dir", s.cfg.SpillDir, "err", err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("notify: digest tick", "err", err)
		}
		t.Reset(s.cfg.Interval)
	}
}

// RequestInterim asks for an interim digest of a draft, sent to its recipients
// by whichever replica's Scheduler gets to it first, whether or not the window
// has closed. It returns the job's name, which is part of the Message-ID and of
// the Redis keys that record the delivery. It returns drafts.ErrNotFound for an
// unknown draft.
func (s *Scheduler) RequestInterim(ctx context.Context, draftID string) (string, error) {
	if _, err := s.drafts.Get(ctx, draftID); err != nil {
		return "", fmt.Errorf("notify: request interim digest %s: %w", draftID, err)
	}
	ms := s.cfg.Now().UnixMilli()
	job := "interim-" + strconv.FormatInt(ms, 10)
	if err := s.rdb.ZAdd(ctx, interimKey, redis.Z{Score: float64(ms), Member: draftID + ":" + job}).Err(); err != nil {
		return "", fmt.Errorf("notify: request interim digest %s: %w", draftID, err)
	}
	return job, nil
}

// job is one digest to deliver.
type job struct {
	draftID string
	name    string // finalJob or "interim-<unix ms>"
	member  string // the interim request in interimKey; "" for a final digest
}

func (j job) final() bool { return j.member == "" }

// tick works once through every digest due.
func (s *Scheduler) tick(ctx context.Context) error {
	jobs, err := s.due(ctx)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		if err := s.work(ctx, j); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// due lists the final digests of closed drafts not yet done, then the interim
// requests, oldest first.
func (s *Scheduler) due(ctx context.Context) ([]job, error) {
	var jobs []job
	ids, err := s.drafts.ClosedBefore(ctx, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("notify: list closed drafts: %w", err)
	}
	if len(ids) > 0 {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		done, err := s.rdb.SMIsMember(ctx, doneKey, args...).Result()
		if err != nil {
			return nil, fmt.Errorf("notify: read done digests: %w", err)
		}
		for i, id := range ids {
			if !done[i] {
				jobs = append(jobs, job{draftID: id, name: finalJob})
			}
		}
	}
	members, err := s.rdb.ZRange(ctx, interimKey, 0, -1).Result()
	if err != nil {
		return jobs, fmt.Errorf("notify: read interim requests: %w", err)
	}
	for _, m := range members {
		id, name, ok := strings.Cut(m, ":")
		if !ok || id == "" || !strings.HasPrefix(name, "interim-") {
			s.log.Warn("notify: malformed interim request dropped", "member", m)
			s.rdb.ZRem(ctx, interimKey, m)
			continue
		}
		jobs = append(jobs, job{draftID: id, name: name, member: m})
	}
	return jobs, nil
}

// claimScript decides whether the lease holder may deliver a digest to one
// recipient now, and renews the lease for the delivery when it may.
//
//	KEYS[1] lease, KEYS[2] sent hash, KEYS[3] retry hash
//	ARGV[1] lease token, ARGV[2] lease TTL (ms), ARGV[3] recipient, ARGV[4] now (unix ms)
//	returns "GO" | "SENT" (already delivered) | "WAIT" (backing off) | "LOST" (lease gone)
var claimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'LOST' end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 'SENT' end
local r = redis.call('HGET', KEYS[3], ARGV[3])
if r then
  local nextAt = tonumber(string.match(r, ' (%d+)$'))
  if nextAt and nextAt > tonumber(ARGV[4]) then return 'WAIT' end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'GO'
`)

// recordScript records that a recipient's server accepted the digest, drops
// the recipient's retry state, and appends digest.sent to the consultation's
// record (see sentEvent): once, since a delivery already recorded, by this
// replica or another, adds no second event.
//
//	KEYS[1] sent hash, KEYS[2] retry hash, KEYS[3] the draft's record,
//	KEYS[4] its intake stream (store.DraftRecordKeys)
//	ARGV[1] recipient, ARGV[2] time sent (RFC 3339, UTC), ARGV[3] the event's template
//	returns 1 when recorded now, 0 when it already was
var recordScript = store.RecordedScript(`
local n = 0
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  record_append(KEYS[3], KEYS[4], record_now(), ARGV[3])
  n = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('HDEL', KEYS[2], ARGV[1])
return n
`)

// coverage is what a digest covered: how many comments, and the first and
// last of them by intake entry ("" when unknown or none).
type coverage struct {
	comments    int
	first, last string
}

// coverageOf is what a digest covers.
func coverageOf(dg *Digest) coverage {
	return coverage{comments: dg.Total, first: dg.firstEntry, last: dg.lastEntry}
}

// sentEvent is the template of the digest.sent event for one delivery: the
// job, the recipient, the Message-ID, the message's hash (messageHash), and
// what it covered. Never a commenter's name or contact, though the bureau's
// copy holds them.
func sentEvent(j job, rcpt, messageID string, e *email.Email, c coverage) (string, error) {
	d := record.Data{"job": j.name, "recipient": rcpt, "message_id": messageID,
		"message_sha256": messageHash(e), "comments": c.comments}
	if c.first != "" {
		d["first_entry"] = c.first
	}
	if c.last != "" {
		d["last_entry"] = c.last
	}
	tpl, err := record.Pending(record.DraftScope(j.draftID), record.System, record.DigestSent, d).Template()
	return string(tpl), err
}

// messageHash is the SHA-256 of what a recipient reads, after the label
// "consult digest v1": the Message-ID and Date headers, the sender's and the
// recipients' addresses (", " between them), the decoded Subject, the text and
// HTML bodies with their line breaks as LF, and each attachment's name and
// content, each preceded by its length in 8 bytes (big-endian). Not the bytes on
// the wire: the MIME boundaries are random at each composition, and servers on
// the way add headers and re-encode parts; what is hashed here survives that,
// so a recipient can recompute it from the mail they hold.
func messageHash(e *email.Email) string {
	h := sha256.New()
	put := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	h.Write([]byte("consult digest v1"))
	from := e.From
	if a, err := mail.ParseAddress(e.From); err == nil {
		from = a.Address
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(e.Subject)
	if err != nil {
		subject = e.Subject
	}
	for _, f := range []string{e.Headers.Get("Message-Id"), e.Headers.Get("Date"), from, strings.Join(e.To, ", "), subject} {
		put([]byte(f))
	}
	put(bytes.ReplaceAll(e.Text, []byte("\r\n"), []byte("\n")))
	put(bytes.ReplaceAll(e.HTML, []byte("\r\n"), []byte("\n")))
	for _, a := range e.Attachments {
		put([]byte(a.Filename))
		put(a.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// failScript counts a failed delivery to a recipient and sets when the next
// attempt may start: RetryBase after the first failure, doubling, at most RetryMax.
//
//	KEYS[1] retry hash
//	ARGV[1] recipient, ARGV[2] now (unix ms), ARGV[3] base wait (ms), ARGV[4] max wait (ms)
//	returns {failed attempts, next attempt (unix ms)}
var failScript = redis.NewScript(`
local attempts = 0
local r = redis.call('HGET', KEYS[1], ARGV[1])
if r then attempts = tonumber(string.match(r, '^(%d+) ')) or 0 end
attempts = attempts + 1
local wait = tonumber(ARGV[3]) * 2 ^ math.min(attempts - 1, 30)
if wait > tonumber(ARGV[4]) then wait = tonumber(ARGV[4]) end
local nextAt = tonumber(ARGV[2]) + wait
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d %d', attempts, nextAt))
return {attempts, nextAt}
`)

// releaseScript deletes the lease if it is still the caller's.
//
//	KEYS[1] lease
//	ARGV[1] lease token
//	returns 1 when released, 0 when the lease was gone or another's
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// renewScript extends the lease if it is still the caller's.
//
//	KEYS[1] lease
//	ARGV[1] lease token, ARGV[2] lease TTL (ms)
//	returns 1 when renewed, 0 when the lease was gone or another's
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// fixScript fixes what a digest job covers, once: the first build's range
// stands for every later one, here or on another replica. A range recorded as
// not settled is marked settled when the caller has seen it so.
//
//	KEYS[1] range hash, KEYS[2] lease
//	ARGV[1] lease token, ARGV[2] until (stream position), ARGV[3] generated
//	(unix ms), ARGV[4] links expire (unix ms), ARGV[5] settled ("1" or "0")
//	returns {until, generated_ms, expires_ms, settled} | error "LOST" (lease gone)
var fixScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOST') end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'until', ARGV[2], 'generated_ms', ARGV[3], 'expires_ms', ARGV[4], 'settled', ARGV[5])
elseif ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'settled', '1')
end
return redis.call('HMGET', KEYS[1], 'until', 'generated_ms', 'expires_ms', 'settled')
`)

// jobRange is what a digest job covers, fixed by its first build.
type jobRange struct {
	Until       string    // the newest stream entry covered; "0-0" for none
	GeneratedAt time.Time // shown in the digest
	Expires     time.Time // when its download links stop working
	// Settled: every entry up to Until was accepted or rejected when seen, so
	// the set Each gives can no longer change.
	Settled bool
}

// parseRange reads the reply of fixScript or of an HMGET of the same fields;
// found is false when the hash does not exist.
func parseRange(v []any) (r jobRange, found bool, err error) {
	if len(v) != 4 || v[0] == nil {
		return jobRange{}, false, nil
	}
	str := func(x any) string { s, _ := x.(string); return s }
	gen, err1 := strconv.ParseInt(str(v[1]), 10, 64)
	exp, err2 := strconv.ParseInt(str(v[2]), 10, 64)
	if err := errors.Join(err1, err2); err != nil || str(v[0]) == "" {
		return jobRange{}, false, fmt.Errorf("malformed digest range %q: %w", v, err)
	}
	return jobRange{Until: str(v[0]), GeneratedAt: time.UnixMilli(gen).UTC(), Expires: time.UnixMilli(exp).UTC(),
		Settled: str(v[3]) == "1"}, true, nil
}

// readRange reads a job's range as fixed, if it is.
func (s *Scheduler) readRange(ctx context.Context, j job) (jobRange, bool, error) {
	v, err := s.rdb.HMGet(ctx, rangeKey(j.draftID, j.name), "until", "generated_ms", "expires_ms", "settled").Result()
	if err != nil {
		return jobRange{}, false, fmt.Errorf("notify: digest %s %s: read range: %w", j.draftID, j.name, err)
	}
	r, found, err := parseRange(v)
	if err != nil {
		return jobRange{}, false, fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
	}
	return r, found, nil
}

// errLeaseLost ends the work on a draft whose lease another replica now holds.
var errLeaseLost = errors.New("notify: digest lease lost")

// fixRange returns the job's range, fixing it on the first build: up to the
// newest entry now, generated now. A final job is called only once the window
// has closed and every receipt is processed, so its range is settled from the
// start; an interim job's is settled once the counts, read after the head, show
// nothing queued (from then on nothing up to the head can change).
func (s *Scheduler) fixRange(ctx context.Context, j job, token string) (jobRange, error) {
	r, found, err := s.readRange(ctx, j)
	if err != nil || (found && r.Settled) {
		return r, err
	}
	until := r.Until
	if !found {
		if until, err = s.comments.Head(ctx, j.draftID); err != nil {
			return jobRange{}, fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
		}
	}
	settled := j.final()
	if !settled {
		// Only the comments the interim digest covers need to be settled: under a
		// steady stream the whole draft never is.
		if settled, err = s.comments.Settled(ctx, j.draftID, until); err != nil {
			return jobRange{}, fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
		}
	}
	if found && !settled {
		return r, nil
	}
	now := s.cfg.Now()
	v, err := fixScript.Run(ctx, s.rdb, []string{rangeKey(j.draftID, j.name), leaseKey(j.draftID)},
		token, until, now.UnixMilli(), now.Add(s.cfg.LinkTTL).UnixMilli(), map[bool]string{true: "1", false: "0"}[settled]).Slice()
	if isScriptError(err, "LOST") {
		return jobRange{}, errLeaseLost
	}
	if err != nil {
		return jobRange{}, fmt.Errorf("notify: digest %s %s: fix range: %w", j.draftID, j.name, err)
	}
	r, _, err = parseRange(v)
	if err != nil {
		return jobRange{}, fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
	}
	return r, nil
}

// build builds the bureau's copy of a job's digest over its fixed range.
func (s *Scheduler) build(ctx context.Context, d drafts.Draft, j job, r jobRange) (*Digest, error) {
	src := func(fn func(comments.Comment) error) error { return s.comments.Each(ctx, d.ID, r.Until, fn) }
	return Build(d, src, Options{
		Audience:    Bureau,
		Interim:     !j.final(),
		Location:    s.cfg.Location,
		BaseURL:     s.cfg.BaseURL,
		Paths:       s.cfg.Paths,
		GeneratedAt: r.GeneratedAt,
		Until:       r.Until,
		Dir:         s.cfg.SpillDir,
	})
}

// compose builds a job's digest and makes its e-mail: whole, or the summary
// with links when the whole would pass MaxBytes. It also says what the digest
// covers, for the record of each delivery.
func (s *Scheduler) compose(ctx context.Context, d drafts.Draft, j job, r jobRange) (Rendered, coverage, error) {
	if err := s.acquireBuild(ctx); err != nil {
		return Rendered{}, coverage{}, err
	}
	defer s.releaseBuild()
	dg, err := s.build(ctx, d, j, r)
	if err != nil {
		return Rendered{}, coverage{}, err
	}
	defer dg.Close()
	links := func(file string) string {
		return linkURL(s.cfg.BaseURL, s.cfg.Paths, s.cfg.LinkKey, d.ID, j.name, file, r.Expires)
	}
	mail, whole, err := mailBody(dg, s.cfg.MaxBytes, links, r.Expires)
	if err != nil {
		return Rendered{}, coverage{}, err
	}
	if !whole {
		s.log.Info("notify: digest too large to e-mail whole; sending its summary with download links",
			"draft", d.ID, "job", j.name, "comments", dg.Total, "max_bytes", s.cfg.MaxBytes)
	}
	return mail, coverageOf(dg), nil
}

// keepLease renews the lease every third of LeaseTTL until stop is called, so
// that a holder at work keeps its draft however long a build or a delivery
// takes, and a holder gone (crashed, cut off) loses it within LeaseTTL. When the
// lease turns out to be another's, it calls lost. stop returns once the renewer
// has ended.
func (s *Scheduler) keepLease(ctx context.Context, j job, token string, lost func()) (stop func()) {
	// Not ctx itself: at shutdown the delivery under way is finished (see Run),
	// and the lease must hold until it is recorded.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	every := s.cfg.LeaseTTL / 3
	go func() {
		defer close(done)
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			cctx, ccancel := context.WithTimeout(rctx, every)
			n, err := renewScript.Run(cctx, s.rdb, []string{leaseKey(j.draftID)}, token, s.cfg.LeaseTTL.Milliseconds()).Int()
			ccancel()
			switch {
			case rctx.Err() != nil:
				return
			case err != nil:
				// Tried again at the next turn; if Redis stays away the lease
				// expires and the next renewal finds it lost.
				s.log.Warn("notify: renew digest lease", "draft", j.draftID, "job", j.name, "err", err)
			case n == 0:
				s.log.Warn("notify: digest lease lost; leaving the draft to the replica that holds it", "draft", j.draftID, "job", j.name)
				lost()
				return
			}
			t.Reset(every)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// bookkeeping bounds the Redis writes that follow a delivery; they run even
// after ctx ended, because a delivery left unrecorded would be repeated.
const bookkeeping = 10 * time.Second

// work takes a draft's lease and delivers one job to every recipient not yet
// served and not backing off. Leaving early is always safe: the next tick, here
// or on another replica, starts again from what Redis has recorded.
func (s *Scheduler) work(ctx context.Context, j job) error {
	token := rand.Text()
	lease := leaseKey(j.draftID)
	ok, err := s.rdb.SetNX(ctx, lease, token, s.cfg.LeaseTTL).Result()
	if err != nil {
		return fmt.Errorf("notify: digest %s %s: take lease: %w", j.draftID, j.name, err)
	}
	if !ok {
		return nil // another replica is working on this draft
	}
	// Losing the lease stops the build and any delivery not yet begun; the
	// delivery under way, if any, finishes (see deliver).
	ctx, lost := context.WithCancel(ctx)
	stopRenewing := s.keepLease(ctx, j, token, lost)
	defer func() {
		stopRenewing()
		lost()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
		defer cancel()
		if err := releaseScript.Run(rctx, s.rdb, []string{lease}, token).Err(); err != nil {
			s.log.Warn("notify: release digest lease; it will expire", "draft", j.draftID, "err", err)
		}
	}()
	err = s.workLeased(ctx, j, token)
	if errors.Is(err, errLeaseLost) {
		s.log.Warn("notify: digest lease lost; leaving the draft to the replica that holds it", "draft", j.draftID, "job", j.name)
		return nil
	}
	if err != nil && ctx.Err() != nil {
		return nil // lost the lease (logged by the renewer), or shutting down
	}
	return err
}

// workLeased is work under the lease.
func (s *Scheduler) workLeased(ctx context.Context, j job, token string) error {
	d, err := s.drafts.Get(ctx, j.draftID)
	if errors.Is(err, drafts.ErrNotFound) && !j.final() {
		s.log.Warn("notify: interim digest of an unknown draft dropped", "draft", j.draftID, "job", j.name)
		return s.rdb.ZRem(ctx, interimKey, j.member).Err()
	}
	if err != nil {
		return fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
	}
	ready, waiting, err := s.outstanding(ctx, j, uniqueRecipients(d.DigestRecipients))
	if err != nil {
		return err
	}
	if len(ready) == 0 {
		if waiting {
			return nil
		}
		// Every recipient recorded, the mark not yet: a replica stopped between.
		return s.markDone(ctx, j)
	}
	if j.final() {
		closed, err := s.comments.WindowClosed(ctx, d.ID)
		if err != nil {
			return fmt.Errorf("notify: digest %s: %w", d.ID, err)
		}
		if !closed {
			// Our clock says closed, Redis's does not yet: it decides.
			s.log.Debug("notify: digest waits for the window to close by Redis's clock", "draft", d.ID)
			return nil
		}
		// Every receipt issued must appear in the digest (REC-RECEIPTS), so wait
		// until the intake workers have processed everything queued in time.
		counts, err := s.comments.Counts(ctx, d.ID)
		if err != nil {
			return fmt.Errorf("notify: digest %s: %w", d.ID, err)
		}
		if !counts.Settled() {
			s.log.Debug("notify: digest waits for queued comments", "draft", d.ID,
				"submitted", counts.Submitted, "stored", counts.Stored, "rejected", counts.Rejected)
			return nil
		}
	}
	r, err := s.fixRange(ctx, j, token)
	if err != nil {
		return err
	}
	if !r.Settled {
		s.log.Debug("notify: interim digest waits for the comments it covers to be processed", "draft", d.ID, "job", j.name)
		return nil
	}
	mail, cover, err := s.compose(ctx, d, j, r)
	if err != nil {
		return fmt.Errorf("notify: digest %s %s: %w", d.ID, j.name, err)
	}

	complete := !waiting
	for _, rcpt := range ready {
		if ctx.Err() != nil {
			return nil
		}
		state, err := claimScript.Run(ctx, s.rdb,
			[]string{leaseKey(d.ID), sentKey(d.ID, j.name), retryKey(d.ID, j.name)},
			token, s.cfg.LeaseTTL.Milliseconds(), rcpt, s.cfg.Now().UnixMilli()).Text()
		if err != nil {
			return fmt.Errorf("notify: digest %s %s: claim %s: %w", d.ID, j.name, rcpt, err)
		}
		switch state {
		case "SENT":
			continue
		case "WAIT":
			complete = false
			continue
		case "LOST":
			s.log.Warn("notify: digest lease lost; leaving the draft to the replica that holds it", "draft", d.ID, "job", j.name)
			return nil
		}
		sent, err := s.deliver(ctx, j, mail, rcpt, cover)
		if err != nil {
			return err
		}
		if !sent {
			complete = false
		}
	}
	if !complete {
		return nil
	}
	return s.markDone(ctx, j)
}

// outstanding reads what Redis has recorded of a job: the recipients that may be
// sent to now, and whether others are backing off. It is a cheap look that spares
// reading every comment and rendering while nothing can be sent; each delivery
// is still decided, atomically, by claimScript.
func (s *Scheduler) outstanding(ctx context.Context, j job, recipients []string) (ready []string, waiting bool, err error) {
	pipe := s.rdb.Pipeline()
	sentCmd := pipe.HGetAll(ctx, sentKey(j.draftID, j.name))
	retryCmd := pipe.HGetAll(ctx, retryKey(j.draftID, j.name))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("notify: digest %s %s: read deliveries: %w", j.draftID, j.name, err)
	}
	sent, retry := sentCmd.Val(), retryCmd.Val()
	now := s.cfg.Now().UnixMilli()
	for _, r := range recipients {
		if _, ok := sent[r]; ok {
			continue
		}
		if f := strings.Fields(retry[r]); len(f) == 2 {
			if next, err := strconv.ParseInt(f[1], 10, 64); err == nil && next > now {
				waiting = true
				continue
			}
		}
		ready = append(ready, r)
	}
	return ready, waiting, nil
}

// markDone records that a job reached every recipient.
func (s *Scheduler) markDone(ctx context.Context, j job) error {
	var err error
	if j.final() {
		err = s.rdb.SAdd(ctx, doneKey, j.draftID).Err()
	} else {
		err = s.rdb.ZRem(ctx, interimKey, j.member).Err()
	}
	if err != nil {
		return fmt.Errorf("notify: digest %s %s: mark done: %w", j.draftID, j.name, err)
	}
	s.log.Info("notify: digest delivered to every recipient", "draft", j.draftID, "job", j.name)
	return nil
}

// deliver sends the digest to one recipient and records the outcome: sent, or
// failed with the time of the next attempt. It reports whether the delivery was
// recorded, and returns an error only when the outcome could not be recorded.
func (s *Scheduler) deliver(ctx context.Context, j job, r Rendered, rcpt string, cover coverage) (bool, error) {
	id, err := MessageID(j.draftID, j.name, rcpt, s.cfg.From)
	if err != nil {
		return false, err
	}
	e := r.Email(s.cfg.From, rcpt, id, s.cfg.Now().In(s.cfg.Location))
	event, err := sentEvent(j, rcpt, id, e, cover)
	if err != nil {
		return false, fmt.Errorf("notify: digest %s %s: %w", j.draftID, j.name, err)
	}
	// The delivery under way is let finish when ctx ends (see Run): abandoning it
	// after the server took the message would leave it unrecorded, to be repeated.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendTimeout)
	sendErr := s.mailer.Send(sctx, e)
	cancel()

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer rcancel()
	if sendErr != nil {
		s.failed.Add(1)
		res, err := failScript.Run(rctx, s.rdb, []string{retryKey(j.draftID, j.name)},
			rcpt, s.cfg.Now().UnixMilli(), s.cfg.RetryBase.Milliseconds(), s.cfg.RetryMax.Milliseconds()).Int64Slice()
		if err != nil || len(res) != 2 {
			s.log.Error("notify: digest send failed", "draft", j.draftID, "job", j.name, "recipient", rcpt, "err", sendErr)
			return false, fmt.Errorf("notify: digest %s %s: record failure for %s: %w", j.draftID, j.name, rcpt, err)
		}
		s.log.Warn("notify: digest send failed", "draft", j.draftID, "job", j.name, "recipient", rcpt,
			"attempt", res[0], "next_attempt", time.UnixMilli(res[1]).In(s.cfg.Location).Format(time.RFC3339), "err", sendErr)
		return false, nil
	}
	s.sent.Add(1)
	events, intake := store.DraftRecordKeys(j.draftID)
	if err := recordScript.Run(rctx, s.rdb, []string{sentKey(j.draftID, j.name), retryKey(j.draftID, j.name), events, intake},
		rcpt, s.cfg.Now().UTC().Format(time.RFC3339Nano), event).Err(); err != nil {
		s.log.Error("notify: digest sent but not recorded; it will be sent again with the same Message-ID",
			"draft", j.draftID, "job", j.name, "recipient", rcpt, "message_id", id, "err", err)
		return false, fmt.Errorf("notify: digest %s %s: record delivery to %s: %w", j.draftID, j.name, rcpt, err)
	}
	s.log.Info("notify: digest sent", "draft", j.draftID, "job", j.name, "recipient", rcpt, "message_id", id)
	return true, nil
}

// uniqueRecipients drops blank and repeated addresses (compared without case),
// keeping the first spelling: two spellings of one mailbox get one message.
func uniqueRecipients(rs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		r = strings.TrimSpace(r)
		k := strings.ToLower(r)
		if r == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	return out
}

// isScriptError reports whether err is the error reply code of one of this
// package's scripts.
func isScriptError(err error, code string) bool {
	var re redis.Error
	// Redis 7 prefixes a script's error_reply with "ERR " unless it starts with a
	// known error code; accept both.
	return errors.As(err, &re) && strings.TrimPrefix(re.Error(), "ERR ") == code
}
