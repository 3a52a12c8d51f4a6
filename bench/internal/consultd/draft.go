package consultd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"
)

// Draft is the draft a benchmark comments on. Its zero fields get the
// benchmarks' defaults: a short rule of the 司法局 with four articles, published
// at once (no opens_at: the server opens it at its own time) for a week, its
// digest to office@example.gov.cn.
type Draft struct {
	ID                   string
	Title, Summary, Text string
	OpensAt, ClosesAt    time.Time // OpensAt zero: now
	Recipients           []string  // of the digest
}

// CreateDraft creates d through the admin API at base, as a bureau would, and
// returns the anchor of its first article.
func CreateDraft(ctx context.Context, base, token string, d Draft) (string, error) {
	now := time.Now()
	if d.Title == "" {
		d.Title = "压力测试用规章草案"
	}
	if d.Summary == "" {
		d.Summary = "用于测量意见提交接口的吞吐量。"
	}
	if d.Text == "" {
		d.Text = "第一章 总则\n第一条 为了规范公开征求意见工作，制定本办法。\n第二条 本办法适用于本市行政机关起草的规章草案。\n第三条 公开征求意见的期限一般不少于三十日。\n"
	}
	if d.ClosesAt.IsZero() {
		d.ClosesAt = now.Add(7 * 24 * time.Hour)
	}
	if len(d.Recipients) == 0 {
		d.Recipients = []string{"office@example.gov.cn"}
	}
	body := map[string]any{
		"id": d.ID, "title": d.Title, "bureau": "司法局", "kind": "rule", "summary": d.Summary, "text": d.Text,
		"closes_at": d.ClosesAt.Format(time.RFC3339Nano), "digest_recipients": d.Recipients,
	}
	if !d.OpensAt.IsZero() {
		body["opens_at"] = d.OpensAt.Format(time.RFC3339Nano)
	}
	in, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/drafts", bytes.NewReader(in))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("create the draft: %w", err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create the draft: %d %s", res.StatusCode, bytes.TrimSpace(out))
	}
	var created struct {
		Sections []struct {
			Anchor string `json:"anchor"`
		} `json:"sections"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return "", fmt.Errorf("create the draft: %w", err)
	}
	if len(created.Sections) == 0 {
		return "", errors.New("create the draft: it has no sections")
	}
	// The first article rather than the chapter heading, when there is one.
	return created.Sections[min(1, len(created.Sections)-1)].Anchor, nil
}

// CommentText is what a citizen might write; CommentBody repeats it to the size
// wanted.
const CommentText = "建议在第一条中明确本办法的适用范围，对于涉及群众切身利益的事项，应当在作出决定前充分听取公众意见，" +
	"并在规定期限内公开意见采纳情况及理由。同时建议增加对基层工作人员的培训要求，明确培训内容、频次和考核方式，" +
	"确保各项规定能够落到实处。对于第二条规定的程序，建议细化各环节的办理时限，避免因程序不明确导致群众反复奔波。" +
	"第三条规定的三十日期限较为合理，但对于内容复杂、社会关注度高的草案，建议适当延长征求意见期限，并通过多种渠道广泛告知。"

// Comment has the fields of consultd's comment API.
type Comment struct {
	Section     string `json:"section"`
	Body        string `json:"body"`
	Name        string `json:"name"`
	Contact     string `json:"contact"`
	Category    string `json:"category"`
	PublishName bool   `json:"publish_name"`
}

// NewComment is one individual's comment on section, signed 张三.
func NewComment(section, body string) Comment {
	return Comment{Section: section, Body: body, Name: "张三", Contact: "zhangsan@example.cn", Category: "individual"}
}

// CommentBody is the comment every request of a load sends: the JSON of
// consultd's comment API with a body of Chinese text, as long as fits in size
// bytes. It returns the JSON and the body's length in characters.
func CommentBody(section string, size int) ([]byte, int) {
	c := NewComment(section, "")
	var text []rune
	for len(text) < size {
		text = append(text, []rune(CommentText)...)
	}
	fit := func(n int) []byte {
		c.Body = string(text[:n])
		b, _ := json.Marshal(c)
		return b
	}
	lo, hi := 1, len(text) // the longest body whose JSON fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(fit(mid)) <= size {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	b := fit(lo)
	return b, utf8.RuneCountInString(c.Body)
}
