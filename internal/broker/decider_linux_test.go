//go:build linux && (amd64 || arm64)

package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
)

// testDecider stands in for the opener: it decides with package policy
// and opens beneath a descriptor of each rule directory pinned at start,
// with the opener's containment (RESOLVE_BENEATH, no magic links, no
// symlinks for an exact rule) and file-type check, so the end-to-end
// tests exercise real containment. Anything the policy does not allow,
// or the opener refuses (containment, file type), continues with the
// program's own credentials; an allowed open that fails for what the file
// is (ENOENT, EEXIST, ...) fails with that errno, as an Open request would;
// with brokerOnly it fails with EACCES instead, except what loader allows
// for reading, which is served the same way (never continued: a
// continued path can be swapped by another thread after the decision).
type testDecider struct {
	pol  *policy.Policy
	dirs []int // pinned, indexed like pol.Dirs(); closed by close

	brokerOnly bool
	loader     *testDecider // nil unless brokerOnly
	// worldReadable serves only what every user may read (the loader's
	// files: a root-only file in /usr/lib stays root's).
	worldReadable bool

	served, continued, failed atomic.Int64

	mu   sync.Mutex
	errs []error // guarded by mu
	seen []string
}

func newTestDeciderErr(rules []string) (*testDecider, error) {
	pol, err := policy.Parse(rules)
	if err != nil {
		return nil, err
	}
	return pinned(pol)
}

// newTestDeciderLines takes rules with options (dirs=yes, hardlinks=yes).
func newTestDeciderLines(lines []string) (*testDecider, error) {
	pol, err := policy.ParseLines(lines)
	if err != nil {
		return nil, err
	}
	return pinned(pol)
}

func pinned(pol *policy.Policy) (*testDecider, error) {
	d := &testDecider{pol: pol}
	for _, dir := range pol.Dirs() {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("pinning %s: %w", dir, err)
		}
		d.dirs = append(d.dirs, fd)
	}
	return d, nil
}

func newTestDecider(t testing.TB, rules ...string) *testDecider {
	t.Helper()
	d, err := newTestDeciderErr(rules)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

func (d *testDecider) close() {
	for _, fd := range d.dirs {
		unix.Close(fd)
	}
	d.dirs = nil
	if d.loader != nil {
		d.loader.close()
	}
}

func (d *testDecider) BrokerError(err error) {
	d.mu.Lock()
	d.errs = append(d.errs, err)
	d.mu.Unlock()
}

func (d *testDecider) Decide(r *Request) Answer {
	d.mu.Lock()
	d.seen = append(d.seen, r.Path)
	d.mu.Unlock()
	fd, errno := d.open(r)
	if fd >= 0 {
		d.served.Add(1)
		return Place(fd)
	}
	switch errno {
	case 0, unix.EXDEV, unix.ELOOP, unix.EACCES, unix.EPERM:
	default:
		d.failed.Add(1)
		return Fail(errno)
	}
	if d.brokerOnly {
		if d.loader != nil && r.Flags&(unix.O_ACCMODE|unix.O_CREAT|unix.O_TRUNC) == unix.O_RDONLY {
			if fd, _ := d.loader.open(r); fd >= 0 {
				d.served.Add(1)
				return Place(fd)
			}
		}
		d.failed.Add(1)
		if errno == 0 {
			errno = unix.EACCES
		}
		return Fail(errno)
	}
	d.continued.Add(1)
	return Continue()
}

// open serves r if the policy allows it, or returns -1 and the errno the
// opener met (0 when the policy refused).
func (d *testDecider) open(r *Request) (int, unix.Errno) {
	if r.Path == "" || r.Resolve != 0 {
		return -1, 0
	}
	dec, err := d.pol.Check(r.Path, r.Flags, r.Mode)
	if err != nil {
		return -1, 0
	}
	how := unix.OpenHow{Flags: uint64(dec.Flags), Mode: uint64(dec.Mode), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if dec.Exact {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, err := unix.Openat2(d.dirs[dec.Dir], dec.Rel, &how)
	if err != nil {
		e, _ := err.(unix.Errno)
		return -1, e
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, unix.EACCES
	}
	if d.worldReadable && (st.Mode&0o004 == 0 || st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&0o001 == 0) {
		unix.Close(fd)
		return -1, unix.EACCES
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Nlink > 1 && !dec.Hardlinks {
			unix.Close(fd)
			return -1, unix.EACCES
		}
	case unix.S_IFDIR:
		if !dec.Dirs {
			unix.Close(fd)
			return -1, unix.EACCES
		}
	default:
		unix.Close(fd)
		return -1, unix.EACCES
	}
	return fd, 0
}
