package smtptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// Parsed is a message as a mail client shows it.
type Parsed struct {
	Header  mail.Header // top-level headers, undecoded
	Subject string      // RFC 2047 decoded
	Text    string      // the first text/plain part that is not an attachment
	HTML    string      // the first text/html part that is not an attachment
	// Attachments are the parts with a file name or disposition "attachment",
	// in order.
	Attachments []Attachment
}

// Attachment is one attached file, its transfer encoding undone.
type Attachment struct {
	Filename    string // RFC 2047 / RFC 2231 decoded
	ContentType string // media type without parameters, lower case
	Params      map[string]string
	Data        []byte
}

// Parse reads a message with the standard library alone: net/mail for the
// headers, mime/multipart for the parts (nested to any depth), quoted-printable
// and base64 decoding, RFC 2047 for the subject and file names. Text parts must
// be UTF-8 or US-ASCII, which is all consult sends.
func Parse(raw []byte) (*Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read headers: %w", err)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return nil, fmt.Errorf("decode subject: %w", err)
	}
	p := &Parsed{Header: msg.Header, Subject: subject}
	if err := p.walk(textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Parsed) walk(h textproto.MIMEHeader, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: undo the transfer encoding here, for every encoding alike.
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s part: %w", mediaType, err)
			}
			if err := p.walk(part.Header, part); err != nil {
				return err
			}
		}
	}
	data, err := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	dec := new(mime.WordDecoder)
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	if filename != "" {
		if f, err := dec.DecodeHeader(filename); err == nil {
			filename = f
		}
	}
	if disp == "attachment" || filename != "" {
		p.Attachments = append(p.Attachments, Attachment{Filename: filename, ContentType: mediaType, Params: params, Data: data})
		return nil
	}
	if cs := strings.ToLower(params["charset"]); strings.HasPrefix(mediaType, "text/") && cs != "" && cs != "utf-8" && cs != "us-ascii" {
		return fmt.Errorf("%s: charset %q not supported", mediaType, cs)
	}
	switch {
	case mediaType == "text/plain" && p.Text == "":
		p.Text = string(data)
	case mediaType == "text/html" && p.HTML == "":
		p.HTML = string(data)
	}
	return nil
}

func decodeTransfer(cte string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return io.ReadAll(r)
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(r))
	case "base64":
		// The decoder skips the CR LF that wrap base64 lines.
		return io.ReadAll(base64.NewDecoder(base64.StdEncoding, r))
	default:
		return nil, fmt.Errorf("transfer encoding %q not supported", cte)
	}
}
