//go:build linux

package cli

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite privsep.1 from the help texts")

// manPath is the committed man page, at the module root.
var manPath = filepath.Join("..", "..", "privsep.1")

// TestManPageUpToDate: the committed privsep.1 is what the help texts and
// flag definitions make now. After changing a --help text or a flag, run
// go generate ./internal/cli (or this test with -update).
func TestManPageUpToDate(t *testing.T) {
	want := manPage(specs())
	if *update {
		if err := os.WriteFile(manPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatalf("%v (run go generate ./internal/cli to write it)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the --help texts: run go generate ./internal/cli and commit it (first difference at byte %d)", manPath, firstDifference(string(got), want))
	}
}

func firstDifference(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestHelpShowsDoubleDash: every flag is listed as --name.
func TestHelpShowsDoubleDash(t *testing.T) {
	for _, s := range specs() {
		var out bytes.Buffer
		words := strings.Fields(s.name)
		if code := s.run(append(words[1:], "--help"), &out, io.Discard); code != exitOK {
			t.Errorf("%s --help: status %d", s.name, code)
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "  --") {
				t.Errorf("%s --help: %q shows a single dash", s.name, l)
			}
		}
		for _, f := range s.flags {
			if !strings.Contains(out.String(), "  --"+f.name) {
				t.Errorf("%s --help does not list --%s", s.name, f.name)
			}
		}
	}
}
