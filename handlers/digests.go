package handlers

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// digestFiles is what the digest download route needs from the notify package.
type digestFiles interface {
	// OpenFile checks a signed download link and builds the file it names. It
	// returns the file open at its start (the caller closes it), the name to
	// save it under and its media type. A refused link is an error that reports
	// LinkRefused.
	OpenFile(ctx context.Context, draftID, job, file, exp, sig string) (f *os.File, name, contentType string, err error)
}

// linkRefused is how notify marks a download link it did not sign, or whose
// time is over.
type linkRefused interface{ LinkRefused() bool }

// downloadBuildTimeout bounds rebuilding a file, in place of RequestTimeout: a
// million comments take a minute. downloadWriteTimeout replaces the server's
// write timeout for a download, which may be a gigabyte on a slow line.
const downloadBuildTimeout, downloadWriteTimeout = 10 * time.Minute, 30 * time.Minute

// downloadDigest serves a file a digest e-mail links to: GET
// /digests/:draft/:job/:file?exp=…&sig=…. The link is the credential (a
// digest's recipients need no account) and the bureau's copy holds contacts,
// so the answer is
// never cached on the way and an altered or expired link gets the same "not
// found" as a link to nothing. Nothing here logs the URL: the request log has
// the route's pattern only.
func (s *server) downloadDigest(c echo.Context) error {
	if s.DigestFiles == nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(downloadWriteTimeout))
	ctx, cancel := context.WithTimeout(c.Request().Context(), downloadBuildTimeout)
	defer cancel()
	f, name, ctype, err := s.DigestFiles.OpenFile(ctx, c.Param("draft"), c.Param("job"), c.Param("file"),
		c.QueryParam("exp"), c.QueryParam("sig"))
	var refused linkRefused
	if errors.As(err, &refused) && refused.LinkRefused() {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ctype)
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	// The same link gives the same bytes (notify fixes what a digest covers), so
	// a download cut off can resume with a Range request.
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, f)
	return nil
}
