// Package static owns the files the web pages are made of: stylesheets, scripts,
// images and the page templates, embedded in the binary, and the content-hashed
// names the assets are served under. It holds no request handling.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"
)

//go:embed css js images templates
var files embed.FS

// Templates returns the page templates (html/template source, *.html).
func Templates() fs.FS {
	sub, err := fs.Sub(files, "templates")
	if err != nil {
		panic(err) // the directory is embedded above: this cannot fail
	}
	return sub
}

// Asset is one file served under /static/.
type Asset struct {
	// Name is the file's own name, as templates ask for it: "app.css".
	Name string
	// File is the name it is served under, with a hash of its content before the
	// extension ("app.3f2a9c1e5b.css"), so that it can be cached for good.
	File        string
	ContentType string
	Body        []byte
}

// Assets returns every stylesheet, script and image, keyed by Name. Names are unique
// across the three directories.
func Assets() (map[string]Asset, error) {
	out := map[string]Asset{}
	for _, dir := range []string{"css", "js", "images"} {
		err := fs.WalkDir(files, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			name := path.Base(p)
			if _, dup := out[name]; dup {
				return fmt.Errorf("static: two assets named %s", name)
			}
			ext := path.Ext(name)
			sum := sha256.Sum256(body)
			ct := mime.TypeByExtension(ext)
			if ct == "" {
				ct = "application/octet-stream"
			}
			out[name] = Asset{Name: name, File: strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:5]) + ext,
				ContentType: ct, Body: body}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("static: %w", err)
		}
	}
	return out, nil
}
