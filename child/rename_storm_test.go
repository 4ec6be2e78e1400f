//go:build linux

package child_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
)

// TestHostileRenameStorm: openat2 with RESOLVE_BENEATH fails a lookup that
// goes through ".." with EAGAIN whenever any rename on the system races it.
// Whoever can rename files anywhere (any local user, in /tmp) could so make
// every request through an in-tree "../" symlink fail; the opener retries.
func TestHostileRenameStorm(t *testing.T) {
	root := t.TempDir()
	testutil.Must(t, os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
	testutil.Must(t, os.WriteFile(filepath.Join(root, "a", "f"), []byte("x"), 0o644))
	testutil.Must(t, os.Symlink("../f", filepath.Join(root, "a", "b", "up")))
	p := startWith(t, false, root+"/")
	self0, opener0 := p.fdCounts()

	storm := t.TempDir()
	testutil.Must(t, os.WriteFile(filepath.Join(storm, "x"), nil, 0o644))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var renames atomic.Int64
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, b := filepath.Join(storm, fmt.Sprint("x", i)), filepath.Join(storm, fmt.Sprint("y", i))
			testutil.Must(t, os.WriteFile(a, nil, 0o644))
			for {
				select {
				case <-stop:
					return
				default:
				}
				unix.Rename(a, b)
				unix.Rename(b, a)
				renames.Add(2)
			}
		}(i)
	}
	const n = 3000
	failed := 0
	var last string
	for id := uint32(1); id <= n; id++ {
		fd, e := p.open(id, filepath.Join(root, "a", "b", "up"), unix.O_RDONLY)
		if fd < 0 {
			failed++
			last = hostile.ReplyText(id, e.Reason, syscall.Errno(e.Errno))
			continue
		}
		unix.Close(fd)
	}
	close(stop)
	wg.Wait()
	got := fmt.Sprintf("%d of %d opens failed (%d renames meanwhile)", failed, n, renames.Load())
	if failed > 0 {
		got += "; last: " + last
		t.Error(got)
	}
	hostile.Row(t, secContain, "opens through an in-tree \"../\" symlink while another process renames files elsewhere", "every open succeeds (EAGAIN from openat2 is retried)", got)
	p.checkFDs(self0, opener0)
	p.close()
	if code := p.exit(); code != 0 {
		t.Errorf("opener exit %d", code)
	}
}
