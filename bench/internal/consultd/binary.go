package consultd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory of consult's go.mod, from the working directory
// up: the benchmarks' paths (bin/consultd, bench/RESULTS.md) are relative to it.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module consult\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run it inside the consult module (no go.mod of module consult above %s)", dir)
		}
	}
}

// Binary is the consultd binary at path, relative to root unless it is absolute.
// When there is none, the error says to run `make build`, or target, which
// builds it first.
func Binary(root, path, target string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return path, fmt.Errorf("%s not found: run `make build` first (`%s` does)", path, target)
	}
	return path, nil
}
