package parent_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/parent"
)

// TestHostileLandlockMPTCP: Landlock's TCP rules do not cover MPTCP sockets. Where
// privsep has the filter that refuses them (TCPRestrictable), restricting
// TCP succeeds and an MPTCP socket, and net.Listen's default MPTCP bind,
// are refused. Where it has none (linux/386), restricting TCP without
// BestEffort is an error naming IPPROTO_MPTCP that applies nothing; with
// BestEffort IPPROTO_MPTCP alone is reported not applied, an MPTCP socket
// can indeed be made, and everything else holds: files, plain TCP binds,
// the abstract unix and signal scopes.
func TestHostileLandlockMPTCP(t *testing.T) {
	t.Parallel()
	if abi := needLandlock(t); abi < 6 {
		t.Skipf("needs Landlock ABI 6 (TCP rules and scopes); the kernel has %d", abi)
	}
	out := runRole(t, "TestHelperSandbox", "landlock-mptcp", "PRIVSEP_TEST_DIR="+sandboxFiles(t))
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(strings.TrimPrefix(l, notePrefix), "\t"); len(f) == 4 && f[0] == "attack" {
			hostile.Row(t, secMPTCP, f[1], f[2], f[3])
		}
	}
}

// secMPTCP is the reliability table section of the MPTCP attacks.
const secMPTCP = "parent: MPTCP sockets past Landlock's TCP rules"

// attackNote reports one attack of a role, for TestHostileLandlockMPTCP's
// reliability rows.
func attackNote(name, expected string, err error) {
	observed := "succeeded"
	var e syscall.Errno
	switch {
	case errors.As(err, &e):
		observed = "refused: " + hostile.Errno(e)
	case err != nil:
		observed = err.Error()
	}
	fmt.Printf("%sattack\t%s\t%s\t%s\n", notePrefix, name, expected, observed)
}

func roleLandlockMPTCP(t *testing.T) {
	dir := os.Getenv("PRIVSEP_TEST_DIR")
	outside := filepath.Join(dir, "outside.txt")
	tree := filepath.Join(dir, "tree")
	abstract, err := net.Listen("unix", "@privsep-test-mptcp-"+filepath.Base(dir))
	if err != nil {
		t.Fatalf("abstract listener, made outside the sandbox: %v", err)
	}
	defer abstract.Close()
	runtime.LockOSThread()
	// A ring set up before the sandbox, to be used after it.
	early, err := newURing()
	if err != nil {
		t.Logf("no io_uring attacks: the kernel refuses io_uring: %v", err)
	} else {
		defer early.close()
	}
	cfg := parent.LandlockConfig{ReadOnly: []string{tree}}

	if !parent.TCPRestrictable() {
		res, err := parent.Landlock(cfg)
		var ue *parent.LandlockUnsupportedError
		if !errors.As(err, &ue) || !slices.Equal(ue.Missing, []string{"IPPROTO_MPTCP"}) {
			t.Fatalf("on %s, Landlock restricting TCP: %+v, %v; want a *LandlockUnsupportedError naming IPPROTO_MPTCP", runtime.GOARCH, res, err)
		}
		if b, err := os.ReadFile(outside); err != nil || string(b) != "outside" {
			t.Fatalf("after the refused Landlock call, reading %s: %q, %v; want nothing restricted", outside, b, err)
		}
		cfg.BestEffort = true
	}
	res, err := parent.Landlock(cfg)
	if err != nil {
		t.Fatalf("Landlock(%+v): %v", cfg, err)
	}
	var want []string
	if !parent.TCPRestrictable() {
		want = []string{"IPPROTO_MPTCP"}
	}
	if !slices.Equal(res.NotApplied, want) {
		t.Errorf("Landlock on %s reports %q not applied, want %q", runtime.GOARCH, res.NotApplied, want)
	}

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 262) // IPPROTO_MPTCP
	if err == nil {
		unix.Close(fd)
	}
	if parent.TCPRestrictable() {
		attackNote("socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) under Landlock", "refused: "+hostile.Errno(syscall.EACCES), err)
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("making an MPTCP socket under Landlock on %s: %v, want EACCES from the filter", runtime.GOARCH, err)
		}
		if l, err := net.Listen("tcp4", "127.0.0.1:0"); !errors.Is(err, syscall.EACCES) {
			if l != nil {
				l.Close()
			}
			t.Errorf("net.Listen (MPTCP where it can) under Landlock: %v, want EACCES", err)
		}
		// The same socket made by io_uring (IORING_OP_SOCKET), which
		// never passes socket(2), then bound to a port Landlock refuses:
		// through a new ring, and through one set up before the sandbox.
		if early != nil {
			fd, err := uringMPTCPBind(nil)
			attackNote("an MPTCP socket made by io_uring (IORING_OP_SOCKET), bound", "refused: "+hostile.Errno(syscall.ENOSYS), err)
			if !errors.Is(err, syscall.ENOSYS) {
				t.Errorf("io_uring: an MPTCP socket bound under Landlock (fd %d): %v, want io_uring_setup to fail with ENOSYS", fd, err)
			}
			fd, err = uringMPTCPBind(early)
			attackNote("the same through a ring set up before the sandbox", "refused: "+hostile.Errno(syscall.ENOSYS), err)
			if !errors.Is(err, syscall.ENOSYS) {
				t.Errorf("io_uring set up before the sandbox: an MPTCP socket bound under Landlock (fd %d): %v, want io_uring_enter to fail with ENOSYS", fd, err)
			}
		}
	} else if err != nil && !errors.Is(err, syscall.EPROTONOSUPPORT) && !errors.Is(err, syscall.ENOPROTOOPT) {
		// What NotApplied names stays allowed (unless the kernel lacks
		// MPTCP or has it off).
		t.Errorf("making an MPTCP socket on %s, reported not applied: %v, want it made", runtime.GOARCH, err)
	}

	// Everything else is applied.
	denied(t, outside, os.O_RDONLY)
	if b, err := os.ReadFile(filepath.Join(tree, "a.txt")); err != nil || string(b) != "alpha" {
		t.Errorf("reading beneath ReadOnly: %q, %v", b, err)
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	if l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0"); !errors.Is(err, syscall.EACCES) {
		if l != nil {
			l.Close()
		}
		t.Errorf("binding plain TCP under Landlock: %v, want EACCES", err)
	}
	if c, err := net.Dial("unix", abstract.Addr().String()); !errors.Is(err, syscall.EPERM) {
		if c != nil {
			c.Close()
		}
		t.Errorf("connecting to an abstract socket made outside: %v, want EPERM", err)
	}
	if err := unix.Kill(1, 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("kill(1, 0) under the signal scope: %v, want EPERM", err)
	}
}

// uRing is an io_uring instance of this test, just enough to submit one
// request and wait for its completion.
type uRing struct {
	fd        int
	ring, sqe []byte
	p         uRingParams
}

// uRingParams is struct io_uring_params (uapi linux/io_uring.h).
type uRingParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sq                                                                     struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cq struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

func newURing() (*uRing, error) {
	r := &uRing{fd: -1}
	fd, _, e := unix.Syscall(425, 4, uintptr(unsafe.Pointer(&r.p)), 0) // io_uring_setup
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", e)
	}
	r.fd = int(fd)
	size := max(r.p.sq.array+r.p.sqEntries*4, r.p.cq.cqes+r.p.cqEntries*16)
	var err error
	if r.ring, err = unix.Mmap(r.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, fmt.Errorf("mmap of the rings: %w", err)
	}
	if r.sqe, err = unix.Mmap(r.fd, 0x10000000, int(r.p.sqEntries*64), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, fmt.Errorf("mmap of the submission entries: %w", err)
	}
	return r, nil
}

func (r *uRing) close() {
	if r.sqe != nil {
		unix.Munmap(r.sqe)
	}
	if r.ring != nil {
		unix.Munmap(r.ring)
	}
	if r.fd >= 0 {
		unix.Close(r.fd)
	}
}

// socket makes a socket through the ring (IORING_OP_SOCKET) and returns
// its descriptor.
func (r *uRing) socket(domain, typ, proto int) (int, error) {
	u32 := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&r.ring[off])) }
	sqe := r.sqe[:64]
	clear(sqe)
	sqe[0] = 45 // IORING_OP_SOCKET
	*(*int32)(unsafe.Pointer(&sqe[4])) = int32(domain)
	*(*uint64)(unsafe.Pointer(&sqe[8])) = uint64(typ)
	*(*uint32)(unsafe.Pointer(&sqe[24])) = uint32(proto)
	tail := *u32(r.p.sq.tail)
	*u32(r.p.sq.array + tail&*u32(r.p.sq.ringMask)*4) = 0
	*u32(r.p.sq.tail) = tail + 1
	if _, _, e := unix.Syscall6(426, uintptr(r.fd), 1, 1, 1, 0, 0); e != 0 { // io_uring_enter, GETEVENTS
		return -1, fmt.Errorf("io_uring_enter: %w", e)
	}
	head := *u32(r.p.cq.head)
	res := *(*int32)(unsafe.Pointer(&r.ring[r.p.cq.cqes+head&*u32(r.p.cq.ringMask)*16+8]))
	*u32(r.p.cq.head) = head + 1
	if res < 0 {
		return -1, fmt.Errorf("IORING_OP_SOCKET: %w", unix.Errno(-res))
	}
	return int(res), nil
}

// uringMPTCPBind is the attack: an MPTCP socket made through ring (a new
// one if nil), bound to an ephemeral port, which Landlock's TCP rules would
// refuse a TCP socket. It returns the bound descriptor (closed) or why not.
func uringMPTCPBind(ring *uRing) (int, error) {
	if ring == nil {
		var err error
		if ring, err = newURing(); err != nil {
			return -1, err
		}
		defer ring.close()
	}
	fd, err := ring.socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 262)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fd, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

// TestHostileMPTCPCompat32: on amd64 a program may make system calls
// through the i386 ABI (int 0x80), with other numbers, and with
// socketcall(2), whose arguments a seccomp filter cannot read. A 32-bit
// program run under the sandbox tries each way to an MPTCP socket: socket(2)
// with IPPROTO_MPTCP is refused with EACCES (and with IPPROTO_TCP
// allowed), socketcall(SYS_SOCKET) and io_uring fail with ENOSYS, and
// socketcall's other sub-calls still reach the kernel.
func TestHostileMPTCPCompat32(t *testing.T) {
	t.Parallel()
	if runtime.GOARCH != "amd64" {
		t.Skipf("the i386 ABI beside a 64-bit one is amd64's; this is %s", runtime.GOARCH)
	}
	if abi := needLandlock(t); abi < 4 {
		t.Skipf("needs Landlock ABI 4 (TCP rules); the kernel has %d", abi)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go tool to build the 32-bit program: %v", err)
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "compat32")
	cmd := exec.Command(goTool, "build", "-o", prog, "./testdata/compat32")
	cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build (GOARCH=386) ./testdata/compat32: %v\n%s", err, b)
	}
	out := runRole(t, "TestHelperSandbox", "landlock-compat32", "PRIVSEP_TEST_PROG="+prog)
	want := map[string]string{
		"socket-mptcp":       "EACCES",
		"socket-tcp":         "ok",
		"socketcall-socket":  "ENOSYS",
		"socketcall-recvmsg": "EBADF",
		"io_uring_setup":     "ENOSYS",
	}
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if name, res, ok := strings.Cut(strings.TrimPrefix(l, notePrefix+"compat32 "), " "); ok && want[name] != "" {
			got[name] = res
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		hostile.Row(t, secMPTCP, "32-bit program on amd64: "+name, want[name], got[name])
		if got[name] != want[name] {
			t.Errorf("32-bit program under the sandbox, %s: %q, want %q", name, got[name], want[name])
		}
	}
}

func roleLandlockCompat32(t *testing.T) {
	prog := os.Getenv("PRIVSEP_TEST_PROG")
	runtime.LockOSThread()
	if _, err := parent.Landlock(parent.LandlockConfig{ReadOnly: []string{filepath.Dir(prog)}}); err != nil {
		t.Fatalf("Landlock: %v", err)
	}
	cmd := exec.Command(prog)
	cmd.Stdin = strings.NewReader("") // not /dev/null, which Landlock refuses
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s under Landlock: %v\n%s", prog, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fmt.Printf("%scompat32 %s\n", notePrefix, l)
	}
}
