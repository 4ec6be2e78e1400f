//go:build linux

package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenLoop: the opens leave no descriptor open; a missing file fails
// with the errno.
func TestOpenLoop(t *testing.T) {
	before := FDs(t, 0)
	if _, err := OpenLoop(os.Args[0], 100); err != nil {
		t.Fatal(err)
	}
	if after := FDs(t, 0); after != before {
		t.Errorf("%d descriptors after the loop, %d before", after, before)
	}
	if _, err := OpenLoop(filepath.Join(t.TempDir(), "missing"), 1); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a missing file: %v, want ENOENT", err)
	}
}
