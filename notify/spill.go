package notify

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"consult/comments"
)

// spill holds a digest's entries on local disk while it is built, one file per
// group: the comments arrive in the order received and are shown grouped by
// section, and holding them in memory made a digest's memory grow with the
// draft (8.7 GB at 434k comments). Files live in a directory of the spill's own
// (mode 0700, files 0600: they hold contacts), which remove deletes.
type spill struct {
	dir   string
	files []*spillFile // by group index; nil until the group's first entry
	open  int          // files with an open handle
	tick  uint64       // a counter standing in for time, for closing the least recently written
	buf   []byte       // one encoded entry
}

type spillFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	used uint64
}

const (
	// maxOpenSpills bounds the open files (and their buffers) of one build. A
	// draft's groups are its sections, a few hundred at most; past the bound the
	// least recently written file is closed and reopened for appending when its
	// group comes round again, which costs a few system calls, never memory.
	maxOpenSpills = 128
	spillBuffer   = 16 << 10
	// maxSpillField guards the reader against a damaged file; no field of a
	// comment comes near it.
	maxSpillField = 16 << 20
)

// spillPrefix starts the name of every spill directory, so that those a crashed
// process left behind can be found (see removeStaleSpills).
const spillPrefix = "consult-digest-"

func newSpill(parent string) (*spill, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("notify: spill: %w", err)
	}
	dir, err := os.MkdirTemp(parent, spillPrefix+"*") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("notify: spill: %w", err)
	}
	return &spill{dir: dir}, nil
}

// write appends e to its group's file.
func (s *spill) write(group int, e Entry) error {
	for len(s.files) <= group {
		s.files = append(s.files, nil)
	}
	sf := s.files[group]
	if sf == nil {
		sf = &spillFile{path: filepath.Join(s.dir, strconv.Itoa(group))}
		s.files[group] = sf
	}
	s.tick++
	sf.used = s.tick
	if sf.f == nil {
		if s.open >= maxOpenSpills {
			if err := s.closeOldest(); err != nil {
				return err
			}
		}
		f, err := os.OpenFile(sf.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("notify: spill: %w", err)
		}
		sf.f, sf.w = f, bufio.NewWriterSize(f, spillBuffer)
		s.open++
	}
	s.buf = appendEntry(s.buf[:0], e)
	if _, err := sf.w.Write(s.buf); err != nil {
		return fmt.Errorf("notify: spill: %w", err)
	}
	return nil
}

func (s *spill) closeOldest() error {
	var oldest *spillFile
	for _, sf := range s.files {
		if sf != nil && sf.f != nil && (oldest == nil || sf.used < oldest.used) {
			oldest = sf
		}
	}
	if oldest == nil {
		return nil
	}
	return s.closeFile(oldest)
}

func (s *spill) closeFile(sf *spillFile) error {
	err := sf.w.Flush()
	if cerr := sf.f.Close(); err == nil {
		err = cerr
	}
	sf.f, sf.w = nil, nil
	s.open--
	if err != nil {
		return fmt.Errorf("notify: spill: %w", err)
	}
	return nil
}

// finish flushes and closes every file; the spill is then read-only.
func (s *spill) finish() error {
	var errs []error
	for _, sf := range s.files {
		if sf != nil && sf.f != nil {
			errs = append(errs, s.closeFile(sf))
		}
	}
	return errors.Join(errs...)
}

// each calls fn with every entry of a group in the order written.
func (s *spill) each(group int, fn func(Entry) error) error {
	if group >= len(s.files) || s.files[group] == nil {
		return nil
	}
	f, err := os.Open(s.files[group].path)
	if err != nil {
		return fmt.Errorf("notify: spill: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, spillBuffer)
	var scratch []byte
	for {
		var e Entry
		e, scratch, err = readEntry(r, scratch)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("notify: spill: %s: %w", filepath.Base(s.files[group].path), err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// remove closes and deletes the spill.
func (s *spill) remove() error {
	for _, sf := range s.files {
		if sf != nil && sf.f != nil {
			_ = sf.f.Close()
			sf.f, sf.w = nil, nil
		}
	}
	s.open = 0
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("notify: spill: %w", err)
	}
	return nil
}

// removeStaleSpills deletes the spill directories in parent older than age:
// those of a process that crashed while building, which hold personal data.
// A build takes minutes at most, so age can be generous and still safe for
// another process building in the same directory.
func removeStaleSpills(parent string, age time.Duration, now time.Time) error {
	if parent == "" {
		parent = os.TempDir()
	}
	des, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range des {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), spillPrefix) {
			continue
		}
		info, err := de.Info()
		if err != nil || now.Sub(info.ModTime()) < age {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(parent, de.Name())))
	}
	return errors.Join(errs...)
}

// The spill format of an entry: its strings each as a uvarint length and the
// bytes, the received time as a varint of Unix nanoseconds, and one byte of
// flags. It is read back only by the process that wrote it, so it has no version.
const (
	flagPublishName = 1 << iota
	flagDuplicate
)

func appendEntry(b []byte, e Entry) []byte {
	for _, s := range [...]string{e.Code, string(e.Category), e.Name, e.RawName, e.Contact, e.Body, e.SHA256} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, e.ReceivedAt.UnixNano())
	var flags byte
	if e.PublishName {
		flags |= flagPublishName
	}
	if e.Duplicate {
		flags |= flagDuplicate
	}
	return append(b, flags)
}

// readEntry reads one entry; io.EOF means there was none left. The location
// and labels are filled in by the reader's caller.
func readEntry(r *bufio.Reader, scratch []byte) (Entry, []byte, error) {
	var fields [7]string
	for i := range fields {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Entry{}, scratch, err
		}
		if n > maxSpillField {
			return Entry{}, scratch, fmt.Errorf("field of %d bytes", n)
		}
		if cap(scratch) < int(n) {
			scratch = make([]byte, n)
		}
		scratch = scratch[:n]
		if _, err := io.ReadFull(r, scratch); err != nil {
			return Entry{}, scratch, noEOF(err)
		}
		fields[i] = string(scratch)
	}
	ns, err := binary.ReadVarint(r)
	if err != nil {
		return Entry{}, scratch, noEOF(err)
	}
	flags, err := r.ReadByte()
	if err != nil {
		return Entry{}, scratch, noEOF(err)
	}
	return Entry{
		Code: fields[0], Category: comments.Category(fields[1]), Name: fields[2], RawName: fields[3],
		Contact: fields[4], Body: fields[5], SHA256: fields[6], ReceivedAt: time.Unix(0, ns),
		PublishName: flags&flagPublishName != 0, Duplicate: flags&flagDuplicate != 0,
	}, scratch, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
