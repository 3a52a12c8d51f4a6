package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"consult/internal/smtptest"
	"consult/record"
	"consult/store"
)

// TestDigestSentRecorded: each delivery appends one digest.sent to the draft's
// record, by the system, at Redis's time, naming the recipient, the message and
// the comments it covered, with a hash the recipient can recompute from the
// mail as received; a second replica's ticks add none.
func TestDigestSentRecorded(t *testing.T) {
	e := newEnv(t, smtptest.Options{})
	ctx := context.Background()
	d := e.addDraft("rec-draft", "fzb@hongya.example.gov.cn", "director@hongya.example.gov.cn")
	e.comments.mu.Lock()
	cs := e.comments.cs[d.ID]
	for i := range cs {
		cs[i].Entry = fmt.Sprintf("17620000000%02d-%d", i, i)
	}
	e.comments.mu.Unlock()
	e.close(d)

	redisNow := func() time.Time {
		now, err := e.rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return now.Truncate(time.Millisecond)
	}
	before := redisNow()
	tick(t, e.scheduler(t, false))
	after := redisNow()
	msgs := e.smtp.WaitFor(t, 2, 10*time.Second)
	tick(t, e.scheduler(t, true))

	es, next, err := store.NewRecords(e.rdb).Page(ctx, record.DraftScope(d.ID), 0, 100)
	if err != nil || next != 0 || len(es) != 2 {
		t.Fatalf("record = %+v, next %d, %v; want 2 events", es, next, err)
	}
	byRcpt := map[string]record.Event{}
	for i, ev := range es {
		if ev.Seq != int64(i+1) || ev.Action != record.DigestSent || ev.Actor != record.System || ev.Intake != "0-0" ||
			ev.At.Before(before) || ev.At.After(after) {
			t.Errorf("event %+v (Redis time %v to %v)", ev, before, after)
		}
		byRcpt[ev.Data["recipient"].(string)] = ev
	}
	for _, m := range msgs {
		ev, ok := byRcpt[m.To[0]]
		if !ok {
			t.Fatalf("no event for %s", m.To[0])
		}
		p := m.Parse(t)
		want := map[string]any{"job": finalJob, "message_id": p.Header.Get("Message-Id"), "comments": int64(len(cs)),
			"first_entry": cs[0].Entry, "last_entry": cs[len(cs)-1].Entry, "message_sha256": receivedHash(t, p)}
		for k, v := range want {
			if ev.Data[k] != v {
				t.Errorf("%s: %s = %v, want %v", m.To[0], k, ev.Data[k], v)
			}
		}
	}
	// The bureau's copy holds names and contacts; the record holds none.
	raw, err := e.rdb.LRange(ctx, "consult:{"+d.ID+"}:events", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		for _, pd := range []string{c.Name, c.Contact} {
			if pd != "" && strings.Contains(strings.Join(raw, "\n"), pd) {
				t.Errorf("personal data %q in the record", pd)
			}
		}
	}
}

// receivedHash computes the message hash as a recipient would, from the mail as
// received, following messageHash's documentation rather than its code.
func receivedHash(t *testing.T, p *smtptest.Parsed) string {
	t.Helper()
	h := sha256.New()
	put := func(s string) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	h.Write([]byte("consult digest v1"))
	from, err := mail.ParseAddress(p.Header.Get("From"))
	if err != nil {
		t.Fatal(err)
	}
	to, err := mail.ParseAddressList(p.Header.Get("To"))
	if err != nil {
		t.Fatal(err)
	}
	var tos []string
	for _, a := range to {
		tos = append(tos, a.Address)
	}
	put(p.Header.Get("Message-Id"))
	put(p.Header.Get("Date"))
	put(from.Address)
	put(strings.Join(tos, ", "))
	put(p.Subject)
	put(strings.ReplaceAll(p.Text, "\r\n", "\n"))
	put(strings.ReplaceAll(p.HTML, "\r\n", "\n"))
	for _, a := range p.Attachments {
		put(a.Filename)
		put(string(bytes.Clone(a.Data)))
	}
	return hex.EncodeToString(h.Sum(nil))
}
