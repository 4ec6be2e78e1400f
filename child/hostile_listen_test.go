//go:build linux

package child_test

// Attacks on unix-socket listen rules and on rules that reach into the
// opener's own process, performed by a hostile parent against a root
// opener: the parent can write in the socket's directory and races the
// opener there. Each case logs a row of the reliability table.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

const secListen = "opener: unix-socket listen rules and /proc rules under attack"

// listenRoot says why the listen attacks need root, for the skip message.
const listenRoot = "the attacks are on a root opener's bind, chmod, chown and unlink"

// startFlags spawns an opener and completes the handshake with flags and
// rules.
func startFlags(t *testing.T, flags uint16, rules ...string) *peer {
	t.Helper()
	p := helloFlags(t, flags, rules...)
	if m := p.recv(); m.Type != protocol.TypeReady {
		t.Fatalf("first reply: got %s, want ready (opener stderr: %s)", m.Type, p.stderr.String())
	}
	return p
}

// eachWalk runs f with openat2 and with the fallback walk (HelloNoOpenat2).
func eachWalk(t *testing.T, f func(t *testing.T, flags uint16)) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			f(t, walkFlags(fallback))
		})
	}
}

// eachListenAttack runs attack as root, with openat2 and with the fallback
// walk, given dir, a fresh directory the parent writes in, and rootOnly, a
// fresh root-only (0700) directory the attack tries to reach; the opener
// must leave no private directory in rootOnly.
func eachListenAttack(t *testing.T, attack func(t *testing.T, flags uint16, dir, rootOnly string)) {
	testutil.NeedRoot(t, listenRoot)
	eachWalk(t, func(t *testing.T, flags uint16) {
		dir, rootOnly := testutil.TempDir(t, "psl"), testutil.TempDir(t, "psl")
		testutil.Must(t, os.Chmod(rootOnly, 0o700))
		attack(t, flags, dir, rootOnly)
		noPrivateDirs(t, rootOnly)
	})
}

// listen sends a listen request for a unix socket and returns the socket
// or the error reply.
func (p *peer) listenUnix(id uint32, path string) (int, protocol.ErrorReply) {
	p.t.Helper()
	msg, err := protocol.AppendListen(nil, id, "unix", path)
	testutil.Must(p.t, err)
	return p.ask(id, msg)
}

// noPrivateDirs fails if the opener left a private directory in dir.
func noPrivateDirs(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	testutil.Must(t, err)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".privsep-") {
			t.Errorf("the opener left its private directory %s in %s", e.Name(), dir)
		}
	}
}

// fdCounts returns the descriptors of this process and of the opener.
func (p *peer) fdCounts() (self, opener int) {
	p.t.Helper()
	return testutil.FDs(p.t, os.Getpid()), testutil.FDs(p.t, p.cmd.Process.Pid)
}

// baseline counts both sides' descriptors once the opener's count has
// stopped moving, and remembers the opener's list for checkFDs. Just after
// ready the opener may still be between two system calls of its own (the
// runtime starts its poller at the first timer, which the session arms
// after answering), and a count taken in such a moment is not the one the
// session returns to.
func (p *peer) baseline() (self, opener int) {
	p.t.Helper()
	opener = testutil.FDsSettled(p.t, p.cmd.Process.Pid, -1)
	p.fdsAtStart = testutil.FDList(p.cmd.Process.Pid)
	return testutil.FDs(p.t, os.Getpid()), opener
}

// checkFDs fails unless both sides hold the descriptors they held at the
// baseline. The opener closes what it sent just after sending it, so its
// count may take a moment to settle.
func (p *peer) checkFDs(self0, opener0 int) {
	p.t.Helper()
	self, opener := p.fdCounts()
	for deadline := time.Now().Add(5 * time.Second); (self != self0 || opener != opener0) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		self, opener = p.fdCounts()
	}
	if self != self0 || opener != opener0 {
		p.t.Errorf("descriptors: test %d → %d, opener %d → %d; want both unchanged\nopener at the baseline: %s\nopener now: %s",
			self0, self, opener0, opener, p.fdsAtStart, testutil.FDList(p.cmd.Process.Pid))
	}
}

// TestHostileListenChmodRace: the parent renames a symlink to a root-only
// 0600 file over the socket's name while the opener makes sockets of mode
// 0666 there. The opener used to chmod the socket by path after bind, and
// chmodded the file the symlink pointed to (0600 became 0666 within 0.3 s).
// The mode is on the socket before bind now, and nothing is done by path.
func TestHostileListenChmodRace(t *testing.T) {
	eachListenAttack(t, func(t *testing.T, flags uint16, dir, secretDir string) {
		secret := filepath.Join(secretDir, "secret")
		testutil.Must(t, os.WriteFile(secret, []byte("root only"), 0o600))
		sock := filepath.Join(dir, "app.sock")
		p := startFlags(t, flags, "listen unix:"+sock+" mode=0666 owner=4242:4242")
		self0, opener0 := p.baseline()

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var swaps atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			link := filepath.Join(dir, "link")
			for {
				select {
				case <-stop:
					return
				default:
				}
				os.Remove(link)
				if os.Symlink(secret, link) == nil && os.Rename(link, sock) == nil {
					swaps.Add(1)
				}
				os.Remove(sock) // make way for the next listen
			}
		}()
		granted, refused := 0, 0
		deadline := time.Now().Add(3 * time.Second)
		for i := uint32(1); i <= 3000 && time.Now().Before(deadline); i++ {
			fd, e := p.listenUnix(i, sock)
			if fd >= 0 {
				unix.Close(fd)
				granted++
			} else if e.Reason != protocol.ReasonSystem {
				t.Fatalf("listen %d: refused with reason %s, want granted or a system error", i, e.Reason)
			} else {
				refused++
			}
			var st unix.Stat_t
			testutil.Must(t, unix.Stat(secret, &st))
			if st.Mode&0o7777 != 0o600 || st.Uid != 0 {
				close(stop)
				wg.Wait()
				t.Fatalf("after %d listens the root-only file has mode %#o owner %d: the opener changed it through the symlink", i, st.Mode&0o7777, st.Uid)
			}
		}
		close(stop)
		wg.Wait()
		os.Remove(sock)
		noPrivateDirs(t, dir)
		p.checkFDs(self0, opener0)
		hostile.Row(t, secListen, "symlink to a root-only 0600 file renamed over the socket name in a loop, listen mode=0666",
			"the file's mode and owner never change", fmt.Sprintf("%d listens granted, %d failed, %d swaps; file still 0600 root", granted, refused, swaps.Load()))
		if granted == 0 {
			t.Errorf("no listen succeeded in %d tries", refused)
		}
	})
}

// TestHostileListenMiddleSymlink: after the handshake the parent replaces
// a directory in the middle of a listen path with a symlink into a
// root-only directory. The socket used to be bound there, owned by the
// parent's uid; the directory pinned at the handshake is used instead.
func TestHostileListenMiddleSymlink(t *testing.T) {
	eachListenAttack(t, func(t *testing.T, flags uint16, dir, secretDir string) {
		sub := filepath.Join(dir, "sub")
		testutil.Must(t, os.Mkdir(sub, 0o755))
		sock := filepath.Join(sub, "app.sock")
		p := startFlags(t, flags, "listen unix:"+sock+" owner=4242")
		self0, opener0 := p.baseline()
		moved := filepath.Join(dir, "moved")
		testutil.Must(t, os.Rename(sub, moved))
		testutil.Must(t, os.Symlink(secretDir, sub))

		fd, e := p.listenUnix(1, sock)
		if fd >= 0 {
			unix.Close(fd)
		}
		if _, err := os.Lstat(filepath.Join(secretDir, "app.sock")); err == nil {
			t.Fatalf("a socket appeared in the root-only directory through the symlink")
		}
		observed := fmt.Sprintf("refused: %s", hostile.Errno(syscall.Errno(e.Errno)))
		if fd >= 0 {
			// Contained: in the directory pinned at the handshake.
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(moved, "app.sock"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != 4242 {
				t.Errorf("the socket is not in the pinned directory as a socket owned by 4242: %v, %+v", err, st)
			}
			observed = "granted in the directory pinned at the handshake; nothing in the root-only directory"
		}
		noPrivateDirs(t, moved)
		p.checkFDs(self0, opener0)
		hostile.Row(t, secListen, "a middle directory of the listen path swapped for a symlink into a root-only directory after the handshake",
			"no socket in the root-only directory", observed)
	})
}

// TestHostileListenReplace: with replace, the opener used to unlink
// whatever socket the path reached, through any symlink, and bind its own:
// another root service's socket, and its clients, became the parent's.
// replace removes only a socket file at the name itself, atomically.
func TestHostileListenReplace(t *testing.T) {
	eachListenAttack(t, func(t *testing.T, flags uint16, dir, otherDir string) {
		// Another root service's live socket.
		victim := filepath.Join(otherDir, "svc.sock")
		vln, err := net.ListenUnix("unix", &net.UnixAddr{Name: victim, Net: "unix"})
		testutil.Must(t, err)
		defer vln.Close()
		var vst unix.Stat_t
		testutil.Must(t, unix.Lstat(victim, &vst))

		sub := filepath.Join(dir, "sub")
		testutil.Must(t, os.Mkdir(sub, 0o755))
		sock := filepath.Join(sub, "svc.sock")
		file := filepath.Join(dir, "file")
		link := filepath.Join(dir, "link")
		subdir := filepath.Join(dir, "subdir")
		stale := filepath.Join(dir, "stale")
		p := startFlags(t, flags,
			"listen unix:"+sock+" replace", "listen unix:"+file+" replace", "listen unix:"+link+" replace",
			"listen unix:"+subdir+" replace", "listen unix:"+stale+" mode=0600 replace")
		self0, opener0 := p.baseline()

		victimIntact := func(what string) {
			t.Helper()
			var st unix.Stat_t
			if err := unix.Lstat(victim, &st); err != nil || st.Ino != vst.Ino {
				t.Fatalf("%s: the other service's socket was removed or replaced (%v)", what, err)
			}
			c, err := net.Dial("unix", victim)
			if err != nil {
				t.Fatalf("%s: the other service's socket no longer answers: %v", what, err)
			}
			c.Close()
		}
		// A regular file at the name is never removed.
		testutil.Must(t, os.WriteFile(file, []byte("keep"), 0o644))
		if fd, e := p.listenUnix(1, file); fd >= 0 || syscall.Errno(e.Errno) != unix.EADDRINUSE {
			t.Errorf("replace over a regular file: got fd %d, %+v; want EADDRINUSE", fd, e)
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
			t.Errorf("the regular file changed: %q, %v", b, err)
		}
		// A symlink to the other service's socket is not a socket: neither
		// it nor its target is removed.
		testutil.Must(t, os.Symlink(victim, link))
		if fd, e := p.listenUnix(2, link); fd >= 0 || syscall.Errno(e.Errno) != unix.EADDRINUSE {
			t.Errorf("replace over a symlink to a socket: got fd %d, %+v; want EADDRINUSE", fd, e)
		}
		if l, err := os.Readlink(link); err != nil || l != victim {
			t.Errorf("the symlink changed: %q, %v", l, err)
		}
		victimIntact("symlink at the name")
		// A directory is not removed either.
		testutil.Must(t, os.Mkdir(subdir, 0o755))
		testutil.Must(t, os.WriteFile(filepath.Join(subdir, "x"), nil, 0o644))
		if fd, e := p.listenUnix(3, subdir); fd >= 0 || syscall.Errno(e.Errno) != unix.EADDRINUSE {
			t.Errorf("replace over a directory: got fd %d, %+v; want EADDRINUSE", fd, e)
		}
		if _, err := os.Stat(filepath.Join(subdir, "x")); err != nil {
			t.Errorf("the directory changed: %v", err)
		}
		// The middle directory swapped for a symlink to the other
		// service's directory after the handshake.
		testutil.Must(t, os.Rename(sub, filepath.Join(dir, "moved")))
		testutil.Must(t, os.Symlink(otherDir, sub))
		fd, _ := p.listenUnix(4, sock)
		if fd >= 0 {
			unix.Close(fd)
		}
		victimIntact("middle symlink to the service's directory")
		// A socket at the name itself is replaced, with the rule's mode.
		s, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
		testutil.Must(t, err)
		s.SetUnlinkOnClose(false)
		s.Close()
		fd, e := p.listenUnix(5, stale)
		if fd < 0 {
			t.Fatalf("replace over a stale socket: %+v", e)
		}
		var st unix.Stat_t
		testutil.Must(t, unix.Lstat(stale, &st))
		if st.Mode&0o7777 != 0o600 {
			t.Errorf("the replacing socket has mode %#o, want 0600", st.Mode&0o7777)
		}
		sa, err := unix.Getsockname(fd)
		if ua, ok := sa.(*unix.SockaddrUnix); err != nil || !ok || ua.Name != stale {
			t.Errorf("the socket's address: got %#v, %v; want %s", sa, err, stale)
		}
		unix.Close(fd)
		noPrivateDirs(t, dir)
		p.checkFDs(self0, opener0)
		hostile.Row(t, secListen, "replace where the name is a regular file, a directory, a symlink to another service's socket, or reached through a middle symlink",
			"nothing but a socket at the name itself is removed; EADDRINUSE", "file, directory, symlink and the other service's socket intact; a stale socket replaced")
	})
}

// TestHostileListenNoLeftovers: failures leave no private directory and no
// descriptor behind: a name that exists, a directory that vanished, an
// owner the kernel refuses.
func TestHostileListenNoLeftovers(t *testing.T) {
	testutil.NeedRoot(t, listenRoot)
	eachWalk(t, func(t *testing.T, flags uint16) {
		dir := testutil.TempDir(t, "psl")
		gone := filepath.Join(dir, "gone")
		testutil.Must(t, os.Mkdir(gone, 0o755))
		busy := filepath.Join(dir, "busy")
		ok := filepath.Join(dir, "ok.sock")
		p := startFlags(t, flags, "listen unix:"+busy, "listen unix:"+filepath.Join(gone, "s"), "listen unix:"+ok+" mode=0640")
		self0, opener0 := p.baseline()
		testutil.Must(t, os.WriteFile(busy, nil, 0o644))
		if fd, e := p.listenUnix(1, busy); fd >= 0 || syscall.Errno(e.Errno) != unix.EADDRINUSE {
			t.Errorf("existing name without replace: got fd %d, %+v; want EADDRINUSE", fd, e)
		}
		testutil.Must(t, os.Remove(gone))
		if fd, e := p.listenUnix(2, filepath.Join(gone, "s")); fd >= 0 || e.Reason != protocol.ReasonSystem {
			t.Errorf("directory removed after the handshake: got fd %d, %+v; want a system error", fd, e)
		}
		fd, e := p.listenUnix(3, ok)
		if fd < 0 {
			t.Fatalf("listen: %+v", e)
		}
		c, err := net.Dial("unix", ok)
		if err != nil {
			t.Errorf("connecting to the new socket: %v", err)
		} else {
			c.Close()
		}
		unix.Close(fd)
		var st unix.Stat_t
		testutil.Must(t, unix.Lstat(ok, &st))
		if st.Mode&0o7777 != 0o640 {
			t.Errorf("socket mode: got %#o, want 0640", st.Mode&0o7777)
		}
		noPrivateDirs(t, dir)
		p.checkFDs(self0, opener0)
	})
}

// TestHostileOwnProcessRules: rules under /proc/self are the opener's own
// process (r:/proc/self/ gave the parent the root opener's memory). They
// are refused at the handshake, written so or reached through a symlink.
func TestHostileOwnProcessRules(t *testing.T) {
	dir := testutil.TempDir(t, "psl")
	toSelf := filepath.Join(dir, "self")
	testutil.Must(t, os.Symlink("/proc/self", toSelf))
	toFD := filepath.Join(dir, "fd")
	testutil.Must(t, os.Symlink("/proc/self/fd", toFD))
	toPID1 := filepath.Join(dir, "init")
	testutil.Must(t, os.Symlink("/proc/1", toPID1))
	toProc := filepath.Join(dir, "proc")
	testutil.Must(t, os.Symlink("/proc", toProc))
	eachWalk(t, func(t *testing.T, flags uint16) {
		for _, tc := range []struct{ rule, why string }{
			{"r:/proc/self/", "/proc/self"},
			{"r:/proc/thread-self/", "/proc/thread-self"},
			{"r:/proc/self/mem", "/proc/self"},
			{"r:/proc/", "/proc"},
			{"r:/dev/fd/", "/dev/fd"},
			{"r:" + toSelf + "/", "a process's own directory"},
			{"r:" + toSelf + "/mem", "a process's own directory"},
			{"r:" + toFD + "/", "a process's own directory"},
			{"r:" + toPID1 + "/", "a process's own directory"},
			{"r:" + toProc + "/", "procfs root"},
		} {
			p := helloFlags(t, flags, tc.rule)
			m := p.recv()
			observed := hostile.Describe(m)
			if m.Type != protocol.TypeError || m.ID != 0 {
				t.Errorf("%s: got %s, want an error id 0 refusing the hello", tc.rule, observed)
				continue
			}
			if code := p.exit(); code != protocol.ExitProtocol {
				t.Errorf("%s: exit status %d, want %d", tc.rule, code, protocol.ExitProtocol)
			}
			if log := p.stderr.String(); !strings.Contains(log, tc.why) {
				t.Errorf("%s: the opener's log does not say why (%q): %s", tc.rule, tc.why, log)
			}
			hostile.Row(t, secListen, "hello with the rule "+strings.ReplaceAll(tc.rule, dir, "$DIR"),
				"hello refused (error id 0, exit 3), the log names the rule and why", observed+", exit 3")
		}
		// What stays allowed on procfs.
		p := startFlags(t, flags, "r:/proc/cpuinfo", "r:/proc/sys/kernel/")
		fd, e := p.open(1, "/proc/cpuinfo", unix.O_RDONLY)
		if fd < 0 {
			t.Errorf("/proc/cpuinfo: %+v", e)
		} else {
			unix.Close(fd)
		}
		fd, e = p.open(2, "/proc/sys/kernel/ostype", unix.O_RDONLY)
		if fd < 0 {
			t.Errorf("/proc/sys/kernel/ostype: %+v", e)
		} else {
			unix.Close(fd)
		}
	})
}
