//go:build linux && (amd64 || arm64)

package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// probeMain runs as a brokered program (nobody, under the filter) and
// makes the calls cat and Python cannot: openat2 with good and bad
// open_how, paths across a page boundary or at the end of a mapping,
// unreadable and unterminated paths, bad directory descriptors, creat
// and open. args: the allowed root-only file, its content, a directory
// nobody may open. It prints one line per check: "NAME ok" or
// "NAME FAIL ...".
func probeMain(args []string) int {
	if len(args) != 3 {
		return 2
	}
	key, content, pub := args[0], args[1], args[2]
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Println("mmap FAIL", err)
		return 1
	}
	// The second page goes: a path ending at the end of the first page
	// is readable, one byte further is not.
	// unix.Munmap only takes whole mappings it made; unmap one page raw.
	if _, _, e := unix.Syscall(unix.SYS_MUNMAP, uintptr(unsafe.Pointer(&mem[page])), uintptr(page), 0); e != 0 {
		err := e
		fmt.Println("munmap FAIL", err)
		return 1
	}
	mem = mem[:page]
	cstr := func(s string) *byte { b := append([]byte(s), 0); return &b[0] }

	check := func(name string, fd int, err error) {
		if err != nil {
			fmt.Println(name, "FAIL", err)
			return
		}
		defer unix.Close(fd)
		b := make([]byte, 100)
		n, _ := unix.Read(fd, b)
		if string(b[:n]) != content {
			fmt.Printf("%s FAIL read %q\n", name, b[:n])
			return
		}
		fmt.Println(name, "ok")
	}
	wantErr := func(name string, fd int, err, want error) {
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != want {
			fmt.Println(name, "FAIL got", err, "want", want)
			return
		}
		fmt.Println(name, "ok")
	}
	openat := func(dirfd int, p unsafe.Pointer, flags int) (int, error) {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(p), uintptr(flags), 0, 0, 0)
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
	openat2 := func(p *byte, how unsafe.Pointer, size uintptr) (int, error) {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT2, uintptr(cwdFD), uintptr(unsafe.Pointer(p)), uintptr(how), size, 0, 0)
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
	cwd := cwdFD

	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC}
	fd, err := openat2(cstr(key), unsafe.Pointer(&how), unsafe.Sizeof(how))
	check("openat2", fd, err)

	big := make([]byte, 64) // a newer open_how: zero tail accepted
	*(*unix.OpenHow)(unsafe.Pointer(&big[0])) = how
	fd, err = openat2(cstr(key), unsafe.Pointer(&big[0]), 64)
	check("openat2-bigger-zero-tail", fd, err)
	big[40] = 1
	fd, err = openat2(cstr(key), unsafe.Pointer(&big[0]), 64)
	wantErr("openat2-nonzero-tail", fd, err, unix.E2BIG)
	fd, err = openat2(cstr(key), unsafe.Pointer(&how), 8)
	wantErr("openat2-small", fd, err, unix.EINVAL)
	bad := unix.OpenHow{Flags: unix.O_RDONLY, Mode: 0o644}
	fd, err = openat2(cstr(key), unsafe.Pointer(&bad), unsafe.Sizeof(bad))
	wantErr("openat2-mode-without-creat", fd, err, unix.EINVAL)
	fd, err = openat2(cstr(key), unsafe.Pointer(uintptr(unsafe.Pointer(&mem[0]))+uintptr(page)), unsafe.Sizeof(how))
	wantErr("openat2-how-unmapped", fd, err, unix.EFAULT)
	// The broker leaves RESOLVE_ flags to the Decider; this one does not
	// serve them, so the call continues and nobody's own open fails.
	res := unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_NO_SYMLINKS}
	fd, err = openat2(cstr(key), unsafe.Pointer(&res), unsafe.Sizeof(res))
	wantErr("openat2-resolve-continues", fd, err, unix.EACCES)

	// A path across a page boundary, in a fresh two-page mapping.
	two, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Println("mmap FAIL", err)
		return 1
	}
	off := page - len(key)/2
	copy(two[off:], key)
	two[off+len(key)] = 0
	fd, err = openat(cwd, unsafe.Pointer(&two[off]), unix.O_RDONLY)
	check("path-across-pages", fd, err)

	off = page - len(key) - 1
	copy(mem[off:], key)
	mem[page-1] = 0
	fd, err = openat(cwd, unsafe.Pointer(&mem[off]), unix.O_RDONLY)
	check("path-ends-at-mapping-end", fd, err)

	copy(mem[page-4:], "/abc") // no NUL before the unmapped page
	fd, err = openat(cwd, unsafe.Pointer(&mem[page-4]), unix.O_RDONLY)
	wantErr("path-runs-off-mapping", fd, err, unix.EFAULT)
	fd, err = openat(cwd, unsafe.Pointer(uintptr(unsafe.Pointer(&mem[0]))+uintptr(page)), unix.O_RDONLY)
	wantErr("path-unmapped", fd, err, unix.EFAULT)
	fd, err = openat(cwd, nil, unix.O_RDONLY)
	wantErr("path-null", fd, err, unix.EFAULT)

	long := "/" + strings.Repeat("a", unix.PathMax)
	fd, err = openat(cwd, unsafe.Pointer(cstr(long)), unix.O_RDONLY)
	wantErr("path-too-long", fd, err, unix.ENAMETOOLONG)
	fd, err = openat(cwd, unsafe.Pointer(cstr("")), unix.O_RDONLY)
	wantErr("path-empty", fd, err, unix.ENOENT)

	fd, err = openat(999, unsafe.Pointer(cstr("key")), unix.O_RDONLY)
	wantErr("dirfd-bad", fd, err, unix.EBADF)
	fd, err = openat(-5, unsafe.Pointer(cstr("key")), unix.O_RDONLY)
	wantErr("dirfd-negative", fd, err, unix.EBADF)
	null, _ := unix.Open("/dev/null", unix.O_RDONLY, 0)
	fd, err = openat(null, unsafe.Pointer(cstr("key")), unix.O_RDONLY)
	wantErr("dirfd-not-a-directory", fd, err, unix.ENOTDIR)
	// An absolute path ignores dirfd, even a bad one.
	fd, err = openat(999, unsafe.Pointer(cstr(key)), unix.O_RDONLY)
	check("dirfd-ignored-for-absolute", fd, err)
	// O_PATH needs no permission on the directory itself, so nobody
	// holds a descriptor of the 0700 directory and opens "key" in it.
	dfd, err := unix.Open(filepath.Dir(key), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Println("dirfd-opath FAIL", err)
	} else {
		fd, err = openat(dfd, unsafe.Pointer(cstr(filepath.Base(key))), unix.O_RDONLY)
		check("dirfd-opath", fd, err)
		unix.Close(dfd)
	}
	dfd, err = unix.Open(pub, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Println("dirfd-not-allowed FAIL", err)
	} else {
		fd, err = openat(dfd, unsafe.Pointer(cstr("key")), unix.O_RDONLY)
		wantErr("dirfd-not-allowed", fd, err, unix.EACCES)
		unix.Close(dfd)
	}

	for _, cloexec := range []bool{true, false} {
		flags := unix.O_RDONLY
		if cloexec {
			flags |= unix.O_CLOEXEC
		}
		fd, err := unix.Open(key, flags, 0)
		if err != nil {
			fmt.Println("cloexec FAIL", err)
			continue
		}
		got, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		unix.Close(fd)
		if (got&unix.FD_CLOEXEC != 0) != cloexec {
			fmt.Printf("cloexec-%v FAIL F_GETFD %#x\n", cloexec, got)
			continue
		}
		fmt.Printf("cloexec-%v ok\n", cloexec)
	}
	if runtime.GOARCH == "amd64" {
		const sysOpen, sysCreat = 2, 85
		r, _, e := unix.Syscall(sysOpen, uintptr(unsafe.Pointer(cstr(key))), unix.O_RDONLY, 0)
		if e != 0 {
			check("open", -1, e)
		} else {
			check("open", int(r), nil)
		}
		r, _, e = unix.Syscall(sysCreat, uintptr(unsafe.Pointer(cstr(key))), 0o644, 0)
		if e != 0 {
			wantErr("creat-read-only-rule", -1, e, unix.EACCES)
		} else {
			wantErr("creat-read-only-rule", int(r), nil, unix.EACCES)
		}
	}
	return 0
}

// cwdFD is AT_FDCWD in a variable: a negative constant does not convert
// to uintptr.
var cwdFD = unix.AT_FDCWD

func TestBrokerProbeCalls(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	bin := testutil.CopySelf(t, filepath.Join(f.base, "broker.test"))
	// Both ways of taking a directory descriptor: a Go program's main
	// goroutine may run on any of its threads.
	for _, o := range []serveOpts{{}, {noPidfdThread: true}} {
		r := runBrokered(t, d, runOpts{execRole: "probe", serve: o}, bin, f.privKey, "priv key\n", filepath.Join(f.base, "pub"))
		if r.code != 0 {
			t.Fatalf("probe (%+v): exit %d, stdout %q, stderr %q", o, r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := 22
		if runtime.GOARCH == "amd64" {
			want += 2
		}
		if len(lines) != want {
			t.Errorf("probe (%+v) made %d checks, want %d:\n%s", o, len(lines), want, r.stdout)
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, " ok") {
				t.Errorf("probe (%+v): %s", o, l)
			}
		}
	}
	if got, _ := os.ReadFile(f.privKey); string(got) != "priv key\n" {
		t.Errorf("creat changed the file to %q", got)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, err := range d.errs {
		t.Errorf("broker error: %v", err)
	}
}
