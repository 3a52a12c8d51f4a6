package notify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"consult/drafts"
)

// A digest too large to e-mail links to its files instead. A link is
//
//	{BaseURL}{Paths.File(draft, job, file)}?exp={unix seconds}&sig={HMAC-SHA256}
//
// (served by that route of handlers.Register: /digests/{draft}/{job}/{file}), signed with a
// key every replica shares, so that any replica can check it and rebuild the
// file it names from Redis: a job's range is fixed (see jobRange), so the file
// is the same, byte for byte, wherever and whenever it is built. Until staff
// accounts exist the link is the credential, and the bureau's copy it leads to
// holds contacts: it is unguessable (256 bits of MAC), expires, is compared in
// constant time, and is never logged.

// Paths are the paths of the web site's routes that a digest links to: the
// web layer's, from its route table (cmd passes handlers.DraftPath and
// handlers.DigestFilePath), so that a route moves in one place and the
// download route is the one that reads what notify signs.
type Paths struct {
	// Draft is the path of a draft's page.
	Draft func(draftID string) string
	// File is the path of the download of one of a digest job's files.
	File func(draftID, job, file string) string
}

// The files a link may name.
const (
	FileCSV  = "comments.csv"
	FileHTML = "digest.html"
	FileText = "digest.txt"
)

// fileKind is how one file is made and served.
type fileKind struct {
	label       string // in the summary e-mail
	contentType string
	write       func(d *Digest, w io.Writer) error
}

var fileKinds = map[string]fileKind{
	FileCSV:  {"表格 CSV (Excel, WPS)", "text/csv; charset=utf-8", (*Digest).WriteCSV},
	FileHTML: {"网页 HTML", "text/html; charset=utf-8", (*Digest).WriteHTML},
	FileText: {"纯文本 Plain text", "text/plain; charset=utf-8", (*Digest).WriteText},
}

// linkFiles is the order the summary e-mail lists the files in.
var linkFiles = []string{FileCSV, FileHTML, FileText}

// linkError is a download link refused. It reports LinkRefused so that the web
// layer can answer "not found" without importing this package (and go-redis).
type linkError string

func (e linkError) Error() string { return string(e) }

// LinkRefused reports that the error is a refused download link.
func (linkError) LinkRefused() bool { return true }

var (
	// ErrLinkInvalid is a link this service did not sign as it stands: altered,
	// cut short, or naming something that does not exist.
	ErrLinkInvalid error = linkError("notify: digest link is not valid")
	// ErrLinkExpired is a link that was signed here but whose time is over.
	ErrLinkExpired error = linkError("notify: digest link has expired")
)

// LinkKey signs download links. It prints as "[redacted]", in logs and in
// fmt, so that a Config logged whole does not give it away.
type LinkKey []byte

func (LinkKey) String() string               { return "[redacted]" }
func (LinkKey) GoString() string             { return "[redacted]" }
func (LinkKey) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (LinkKey) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// MinLinkKey is the shortest link key accepted, in bytes.
const MinLinkKey = 32

// LoadLinkKey returns the key that signs download links: the configured one
// (CONSULT_LINK_KEY) when set, else one made at random by the first replica
// that starts and kept in Redis (SET NX, so that every replica reads the same).
//
// Keeping it in Redis by default is deliberate: replicas share nothing else, a
// key per process would make a link work on one replica only, and making every
// deployment configure a secret before its first digest is a step that gets
// skipped or done with a weak value. It costs nothing in exposure: whoever can
// read the key from Redis can read the comments there directly. An operator who
// wants the key out of Redis's backups, or to revoke every link at once, sets
// CONSULT_LINK_KEY (changing it voids every link already sent).
func LoadLinkKey(ctx context.Context, rdb redis.UniversalClient, configured string) (LinkKey, error) {
	if configured != "" {
		if len(configured) < MinLinkKey {
			return nil, fmt.Errorf("notify: link key: at least %d bytes, got %d", MinLinkKey, len(configured))
		}
		return LinkKey(configured), nil
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	if err := rdb.SetNX(ctx, linkKeyKey, hex.EncodeToString(b[:]), 0).Err(); err != nil {
		return nil, fmt.Errorf("notify: link key: %w", err)
	}
	v, err := rdb.Get(ctx, linkKeyKey).Result()
	if err != nil {
		return nil, fmt.Errorf("notify: link key: %w", err)
	}
	k, err := hex.DecodeString(v)
	if err != nil || len(k) < MinLinkKey {
		return nil, fmt.Errorf("notify: link key: the value in Redis (%s) is not %d hex bytes; delete it to make a new one", linkKeyKey, MinLinkKey)
	}
	return LinkKey(k), nil
}

// linkMAC signs what a link names and until when. The parts cannot run into
// each other: a draft id and a job name have no "/", and the file is one of
// three names.
func linkMAC(key LinkKey, draftID, job, file string, exp int64) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, "consult digest link 1/"+draftID+"/"+job+"/"+file+"/"+strconv.FormatInt(exp, 10))
	return m.Sum(nil)
}

// linkURL is the one function that makes a download link, on the path the web
// layer's route gives.
func linkURL(baseURL string, paths Paths, key LinkKey, draftID, job, file string, exp time.Time) string {
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", base64.RawURLEncoding.EncodeToString(linkMAC(key, draftID, job, file, exp.Unix())))
	return strings.TrimRight(baseURL, "/") + paths.File(draftID, job, file) + "?" + q.Encode()
}

// checkLink reports whether a link was signed with key and is still valid at
// now: nil, ErrLinkInvalid or ErrLinkExpired. The signature is checked first, so
// that "expired" is said only of a link this service made.
func checkLink(key LinkKey, draftID, job, file, exp, sig string, now time.Time) error {
	if _, ok := fileKinds[file]; !ok || !validJob(job) || !drafts.ValidID(draftID) {
		return ErrLinkInvalid
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || strconv.FormatInt(e, 10) != exp {
		return ErrLinkInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, linkMAC(key, draftID, job, file, e)) {
		return ErrLinkInvalid
	}
	if !now.Before(time.Unix(e, 0)) {
		return ErrLinkExpired
	}
	return nil
}

// validJob reports whether job can name a digest job: finalJob or
// "interim-<unix ms>".
func validJob(job string) bool {
	if job == finalJob {
		return true
	}
	ms, ok := strings.CutPrefix(job, "interim-")
	if !ok || ms == "" || len(ms) > 19 {
		return false
	}
	for _, c := range ms {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// OpenFile checks a download link and builds the file it names: the bureau's
// copy of the job's digest as it was first made (its range is fixed in Redis),
// the same bytes as any other build of it. The file is returned open at its
// start and already deleted from the directory, so that its space goes when it
// is closed, even if the process dies first; with it, the name to save it under
// and its media type. The caller closes the file.
//
// Errors: ErrLinkInvalid and ErrLinkExpired (both report LinkRefused),
// drafts.ErrNotFound, or a failure to read Redis or write local disk.
func (s *Scheduler) OpenFile(ctx context.Context, draftID, jobName, file, exp, sig string) (*os.File, string, string, error) {
	if err := checkLink(s.cfg.LinkKey, draftID, jobName, file, exp, sig, s.cfg.Now()); err != nil {
		return nil, "", "", err
	}
	kind := fileKinds[file]
	d, err := s.drafts.Get(ctx, draftID)
	if err != nil {
		return nil, "", "", fmt.Errorf("notify: digest file %s %s: %w", draftID, jobName, err)
	}
	j := job{draftID: draftID, name: jobName}
	if jobName != finalJob {
		j.member = draftID + ":" + jobName
	}
	r, found, err := s.readRange(ctx, j)
	if err != nil {
		return nil, "", "", err
	}
	if !found || !r.Settled {
		// Signed here, so sent, so fixed: Redis lost it (restored from an older
		// backup, say). Rebuilding from a new range would give other bytes.
		return nil, "", "", ErrLinkInvalid
	}
	if err := s.acquireBuild(ctx); err != nil {
		return nil, "", "", err
	}
	defer s.releaseBuild()
	dg, err := s.build(ctx, d, j, r)
	if err != nil {
		return nil, "", "", err
	}
	defer dg.Close()

	f, err := os.CreateTemp(dg.spill.dir, "file-*") // mode 0600
	if err != nil {
		return nil, "", "", fmt.Errorf("notify: digest file %s %s: %w", draftID, jobName, err)
	}
	// Unlinked at once: dg.Close removes the directory, and an open file outlives
	// its name.
	_ = os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 256<<10)
	err = kind.write(dg, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, "", "", fmt.Errorf("notify: digest file %s %s: %w", draftID, jobName, err)
	}
	return f, draftID + "-" + jobName + "-" + file, kind.contentType, nil
}

// errBuildSlot is returned when ctx ends while waiting for a build slot.
var errBuildSlot = errors.New("notify: waiting for a digest build slot")

// acquireBuild waits for one of the process's build slots: a build reads a
// whole draft and writes it twice to disk, and a few at once are all two cores
// and one Redis should carry beside the intake.
func (s *Scheduler) acquireBuild(ctx context.Context) error {
	select {
	case s.builds <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errBuildSlot, ctx.Err())
	}
}

func (s *Scheduler) releaseBuild() { <-s.builds }
