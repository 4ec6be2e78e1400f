//go:build linux

package child_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/protocol"
)

const secDirs = "opener: directory descriptors and listings"

// startWith starts an opener with rules, on openat2 or on its fallback.
func startWith(t *testing.T, noOpenat2 bool, rules ...string) *peer {
	t.Helper()
	p := helloFlags(t, walkFlags(noOpenat2), rules...)
	m := p.recv()
	r, err := protocol.DecodeReady(m.Payload)
	if err != nil || m.Type != protocol.TypeReady {
		t.Fatalf("ready: got %s %+v, %v", m.Type, r, err)
	}
	if r.Features&protocol.FeatureReadDir == 0 {
		t.Fatalf("ready features %#x lack FeatureReadDir", r.Features)
	}
	return p
}

// readDir sends one readdir request and returns the reply: the listing, or
// the error.
func (p *peer) readDir(id uint32, path string, cookie uint64) (protocol.DirList, []protocol.DirEntry, protocol.ErrorReply) {
	p.t.Helper()
	msg, err := protocol.AppendReadDir(nil, id, cookie, path)
	testutil.Must(p.t, err)
	p.send(msg, nil)
	m := p.recv()
	if m.ID != id || len(m.FDs) != 0 {
		protocol.CloseFDs(m.FDs)
		p.t.Fatalf("reply: got %s id %d with %d fds, want id %d and none", m.Type, m.ID, len(m.FDs), id)
	}
	switch m.Type {
	case protocol.TypeDirList:
		l, err := protocol.DecodeDirList(m.Payload)
		testutil.Must(p.t, err)
		var ents []protocol.DirEntry
		for e := range l.All() {
			ents = append(ents, protocol.DirEntry{Type: e.Type, Name: slices.Clone(e.Name)})
		}
		return l, ents, protocol.ErrorReply{}
	case protocol.TypeError:
		e, err := protocol.DecodeError(m.Payload)
		testutil.Must(p.t, err)
		return protocol.DirList{}, nil, e
	}
	p.t.Fatalf("reply type %s", m.Type)
	return protocol.DirList{}, nil, protocol.ErrorReply{}
}

// sync makes a round trip with a request the opener refuses: once it is
// answered, the opener has closed what it sent with earlier replies (it
// closes a reply's descriptors just after sending them).
func (p *peer) sync(id uint32) {
	p.t.Helper()
	if fd, _ := p.open(id, "/nonexistent/sync", 0); fd >= 0 {
		unix.Close(fd)
	}
}

// attackTree makes base/locked (0700: a user other than its owner may not
// search it) holding a secret, and a public tree base/locked/pub below it
// with a file and a subdirectory, the only part the rules name.
func attackTree(t *testing.T) (pub, secret string) {
	base := t.TempDir()
	locked := filepath.Join(base, "locked")
	pub = filepath.Join(locked, "pub")
	testutil.Must(t, os.MkdirAll(filepath.Join(pub, "sub"), 0o755))
	testutil.Must(t, os.Chmod(locked, 0o700))
	secret = filepath.Join(locked, "secret")
	testutil.Must(t, os.WriteFile(secret, []byte("the secret"), 0o600))
	testutil.Must(t, os.WriteFile(filepath.Join(pub, "f"), []byte("public"), 0o644))
	return pub, secret
}

// climb performs the attack with a directory descriptor: openat(fd,
// "../secret") with the holder's own credentials, past the 0700 directory
// that no rule names. It returns what it read, or "".
func climb(t *testing.T, dirfd int) string {
	fd, err := unix.Openat(dirfd, "../secret", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	b := make([]byte, 64)
	n, _ := unix.Read(fd, b)
	return string(b[:max(n, 0)])
}

// TestHostileDirectoryDescriptor performs the attack a directory
// descriptor allows: a parent asks for a directory under a tree rule and
// under an exact rule, then walks ".." from it to a file no rule names,
// inside a 0700 directory. Without dirs=yes the opener refuses with
// ReasonDirectory, in single opens and batches alike, on openat2 and on the
// fallback; with dirs=yes it hands the descriptor out, and the walk works
// (which is what README says dirs=yes gives away). O_PATH, with or without
// O_DIRECTORY, is refused as a bad request either way. Descriptors are
// counted on both sides.
func TestHostileDirectoryDescriptor(t *testing.T) {
	testutil.NeedRoot(t, "the secret sits in a 0700 directory owned by root")
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", noOpenat2), func(t *testing.T) {
			pub, secret := attackTree(t)
			// pub/ as a tree, and pub/sub named by an exact rule too:
			// the exact rule decides for pub/sub itself.
			p := startWith(t, noOpenat2, pub+"/", pub+"/sub")
			mine, theirs := testutil.FDs(t, os.Getpid()), testutil.FDs(t, p.cmd.Process.Pid)
			id := uint32(0)
			for _, c := range []struct {
				name, path string
				flags      int
			}{
				{"tree root", pub, unix.O_RDONLY},
				{"tree root with O_DIRECTORY", pub, unix.O_RDONLY | unix.O_DIRECTORY},
				{"exact rule naming a directory", pub + "/sub", unix.O_RDONLY | unix.O_DIRECTORY},
			} {
				id++
				fd, e := p.open(id, c.path, c.flags)
				got := hostile.ReplyText(id, e.Reason, syscall.Errno(e.Errno))
				if fd >= 0 {
					got = "opened; ../secret reads " + fmt.Sprintf("%q", climb(t, fd))
					unix.Close(fd)
				}
				want := hostile.ReplyText(id, protocol.ReasonDirectory, unix.EACCES)
				if got != want {
					t.Errorf("%s: got %s, want %s", c.name, got, want)
				}
				hostile.Row(t, secDirs, fmt.Sprintf("open of a directory (%s) without dirs=yes, fallback=%v", c.name, noOpenat2), want, got)
			}
			// O_PATH is no way around it: refused before any rule is
			// looked at, for directories and files.
			for _, fl := range []int{unix.O_PATH, unix.O_PATH | unix.O_DIRECTORY, unix.O_PATH | unix.O_NOFOLLOW} {
				for _, path := range []string{pub, pub + "/sub", pub + "/f"} {
					id++
					fd, e := p.open(id, path, fl)
					if fd >= 0 {
						unix.Close(fd)
					}
					if e.Reason != protocol.ReasonBadRequest || syscall.Errno(e.Errno) != unix.EINVAL {
						t.Errorf("%s with %#x: got %+v, want a bad request (EINVAL)", path, fl, e)
					}
				}
			}
			// A batch: the file is opened, each directory refused.
			id++
			items := []protocol.Open{
				{Flags: unix.O_RDONLY, Path: []byte(pub)},
				{Flags: unix.O_RDONLY, Path: []byte(pub + "/f")},
				{Flags: unix.O_RDONLY | unix.O_DIRECTORY, Path: []byte(pub + "/sub")},
				{Flags: unix.O_PATH, Path: []byte(pub)},
			}
			msg, err := protocol.AppendOpenBatch(nil, id, items)
			testutil.Must(t, err)
			p.send(msg, nil)
			m := p.recv()
			st, ok, err := protocol.DecodeBatchReply(m.Payload, nil)
			for _, fd := range m.FDs {
				if s := climb(t, fd); s != "" {
					t.Errorf("a batch descriptor reaches ../secret: %q", s)
				}
			}
			protocol.CloseFDs(m.FDs)
			want := []protocol.Reason{protocol.ReasonDirectory, protocol.ReasonOK, protocol.ReasonDirectory, protocol.ReasonBadRequest}
			var got []protocol.Reason
			for _, s := range st {
				got = append(got, s.Reason)
			}
			if err != nil || ok != 1 || len(m.FDs) != 1 || !slices.Equal(got, want) {
				t.Errorf("batch: got %v, %d ok, %d fds, %v; want %v and one descriptor", got, ok, len(m.FDs), err, want)
			}
			hostile.Row(t, secDirs, fmt.Sprintf("batch of a tree directory, a file, an exact-rule directory and an O_PATH open, fallback=%v", noOpenat2),
				"directory, ok, directory, bad request; 1 fd", fmt.Sprintf("%v; %d fd", got, len(m.FDs)))
			p.sync(id + 1)
			if m, t2 := testutil.FDs(t, os.Getpid()), testutil.FDs(t, p.cmd.Process.Pid); m != mine || t2 != theirs {
				t.Errorf("descriptors: parent %d → %d, opener %d → %d", mine, m, theirs, t2)

			}
			_ = secret
		})
	}
}

// TestHostileDirsYesHandsOutDirectories: with dirs=yes the descriptor comes, and
// its holder can walk ".." with its own credentials; that is exactly what
// the option gives away, so the test pins it.
func TestHostileDirsYesHandsOutDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the secret sits in a 0700 directory owned by root")
	}
	pub, _ := attackTree(t)
	p := startWith(t, false, pub+"/ dirs=yes", pub+"/sub dirs=yes")
	for i, path := range []string{pub, pub + "/sub"} {
		fd, e := p.open(uint32(i+1), path, unix.O_RDONLY|unix.O_DIRECTORY)
		if fd < 0 {
			t.Fatalf("%s with dirs=yes: got %+v, want a descriptor", path, e)
		}
		if path == pub {
			if s := climb(t, fd); s != "the secret" {
				t.Errorf("openat(fd, \"../secret\"): got %q; the holder of a directory descriptor walks \"..\" with its own credentials", s)
			}
		}
		unix.Close(fd)
	}
	// And out of a chroot: a process of its own chroots into an empty
	// directory, then fchdirs to the descriptor and reads ../secret.
	fd, e := p.open(8, pub, unix.O_RDONLY|unix.O_DIRECTORY)
	if fd < 0 {
		t.Fatalf("%s with dirs=yes: got %+v", pub, e)
	}
	dirFile := os.NewFile(uintptr(fd), "pub")
	defer dirFile.Close()
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperChrootEscape$", "-test.v")
	cmd.Env = append(os.Environ(), chrootRoleEnv+"="+t.TempDir())
	cmd.ExtraFiles = []*os.File{dirFile}
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "escaped: the secret") {
		t.Errorf("chroot escape with a directory descriptor: %v\n%s", err, out)
	}
	hostile.Row(t, secDirs, "dirs=yes: the holder chroots into an empty directory, fchdirs to the descriptor and opens ../secret (what the option gives away)",
		"escaped: the secret", strings.TrimSpace(lastLine(string(out), "escaped")))
	// O_PATH stays refused even here.
	if fd, e := p.open(9, pub, unix.O_PATH|unix.O_DIRECTORY); fd >= 0 || e.Reason != protocol.ReasonBadRequest {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Errorf("O_PATH under dirs=yes: got %+v, want a bad request", e)
	}
}

// chrootRoleEnv makes TestHelperChrootEscape play its part: the jail to
// chroot into, with the directory descriptor at fd 3.
const chrootRoleEnv = "PRIVSEP_TEST_CHROOT_ESCAPE"

// TestHelperChrootEscape is not a test on its own: TestHostileDirsYesHandsOutDirectories
// runs it in a process of its own (chroot changes the whole process), as a
// holder of a directory descriptor that has put itself in a chroot.
func TestHelperChrootEscape(t *testing.T) {
	jail := os.Getenv(chrootRoleEnv)
	if jail == "" {
		t.Skip("run by TestHostileDirsYesHandsOutDirectories only")
	}
	testutil.Must(t, unix.Chroot(jail))
	testutil.Must(t, unix.Chdir("/"))
	if _, err := os.Stat("/tmp"); err == nil {
		t.Fatalf("the jail is not empty")
	}
	testutil.Must(t, unix.Fchdir(3))
	b, err := os.ReadFile("../secret")
	if err != nil {
		t.Fatalf("no escape: %v", err)
	}
	fmt.Printf("escaped: %s\n", b)
}

// lastLine returns the last line of out that holds want, or "".
func lastLine(out, want string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], want) {
			return lines[i]
		}
	}
	return ""
}

// TestHostileReadDir lists directories without a descriptor: what the rules
// allow to be read is listed whatever dirs= says, the rest is refused as an
// open would be, and the opener keeps no descriptor between requests.
func TestHostileReadDir(t *testing.T) {
	for _, noOpenat2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", noOpenat2), func(t *testing.T) {
			dir := t.TempDir()
			tree := filepath.Join(dir, "tree")
			testutil.Must(t, os.MkdirAll(filepath.Join(tree, "sub"), 0o755))
			testutil.Must(t, os.WriteFile(filepath.Join(tree, "f"), nil, 0o644))
			testutil.Must(t, os.Symlink("/etc", filepath.Join(tree, "out")))
			testutil.Must(t, unix.Mkfifo(filepath.Join(tree, "fifo"), 0o644))
			testutil.Must(t, os.Mkdir(filepath.Join(dir, "exact"), 0o755))
			testutil.Must(t, os.WriteFile(filepath.Join(dir, "exact", "x"), nil, 0o644))
			testutil.Must(t, os.Mkdir(filepath.Join(dir, "wo"), 0o755)) // a tree rule's directory must exist
			p := startWith(t, noOpenat2, tree+"/", dir+"/exact", "w:"+dir+"/wo/")
			theirs := testutil.FDs(t, p.cmd.Process.Pid)

			l, ents, e := p.readDir(1, tree, 0)
			if e.Reason != protocol.ReasonOK || l.More {
				t.Fatalf("readdir %s: got %+v %+v", tree, l, e)
			}
			got := map[string]uint8{}
			for _, en := range ents {
				got[string(en.Name)] = en.Type
			}
			want := map[string]uint8{".": protocol.DirDir, "..": protocol.DirDir, "sub": protocol.DirDir, "f": protocol.DirReg,
				"out": protocol.DirLink, "fifo": protocol.DirFIFO}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("readdir %s: got %v, want %v", tree, got, want)
			}
			if _, ents, e := p.readDir(2, dir+"/exact", 0); e.Reason != protocol.ReasonOK || len(ents) != 3 {
				t.Errorf("readdir of an exact rule's directory: got %d entries, %+v; want ., .. and x", len(ents), e)
			}
			// The fallback's O_NOFOLLOW meets the symlink with O_DIRECTORY,
			// which the kernel answers ENOTDIR: refused either way.
			outReason, outErrno := protocol.ReasonEscape, unix.EXDEV
			if noOpenat2 {
				outReason, outErrno = protocol.ReasonSystem, unix.ENOTDIR
			}
			for i, c := range []struct {
				name, path string
				reason     protocol.Reason
				errno      syscall.Errno
			}{
				{"no rule", dir, protocol.ReasonDenied, unix.EACCES},
				{"a file", tree + "/f", protocol.ReasonSystem, unix.ENOTDIR},
				{"missing", tree + "/missing", protocol.ReasonSystem, unix.ENOENT},
				{"symlink out of the tree", tree + "/out", outReason, outErrno},
				{"a FIFO", tree + "/fifo", protocol.ReasonSystem, unix.ENOTDIR},
				{"no r", dir + "/wo/x", protocol.ReasonDenied, unix.EACCES},
				{"not clean", tree + "/./sub", protocol.ReasonBadRequest, unix.EINVAL},
			} {
				id := uint32(10 + i)
				_, _, e := p.readDir(id, c.path, 0)
				gotS := hostile.ReplyText(id, e.Reason, syscall.Errno(e.Errno))
				if e.Reason != c.reason || (c.errno != 0 && syscall.Errno(e.Errno) != c.errno) {
					t.Errorf("readdir %s: got %s, want reason %s errno %v", c.name, gotS, c.reason, c.errno)
				}
				if c.errno != 0 {
					hostile.Row(t, secDirs, fmt.Sprintf("readdir of %s, fallback=%v", c.name, noOpenat2), hostile.ReplyText(id, c.reason, c.errno), gotS)
				}
			}
			// A malformed readdir is answered, and the opener serves on.
			raw := hostile.Message(protocol.TypeReadDir, 30, 0, []byte("short"))
			p.sendRaw(raw)
			p.expectError(30, protocol.ReasonProtocol, unix.EPROTO)
			if got := testutil.FDs(t, p.cmd.Process.Pid); got != theirs {
				t.Errorf("opener descriptors: %d before, %d after", theirs, got)
			}
		})
	}
}

// TestHostileReadDirChunked lists a directory too large for one reply:
// the listing comes in several replies that resume at their cookies, with
// every entry exactly once; a directory removed between two replies fails
// the next with ENOENT. The opener holds no descriptor in between.
func TestHostileReadDirChunked(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	testutil.Must(t, os.Mkdir(big, 0o755))
	const n = 1200
	names := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 200))
		names[name] = true
		testutil.Must(t, os.WriteFile(filepath.Join(big, name), nil, 0o644))
	}
	p := startWith(t, false, dir+"/")
	theirs := testutil.FDs(t, p.cmd.Process.Pid)
	seen := map[string]int{}
	replies := 0
	cookie := uint64(0)
	for id := uint32(1); ; id++ {
		l, ents, e := p.readDir(id, big, cookie)
		if e.Reason != protocol.ReasonOK {
			t.Fatalf("reply %d: %+v", replies, e)
		}
		replies++
		if got := testutil.FDs(t, p.cmd.Process.Pid); got != theirs {
			t.Fatalf("after reply %d the opener holds %d descriptors, %d before", replies, got, theirs)
		}
		for _, en := range ents {
			seen[string(en.Name)]++
		}
		if !l.More {
			break
		}
		cookie = l.Cookie
	}
	dups, missing := 0, 0
	for name := range names {
		switch seen[name] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	want := fmt.Sprintf("%d entries in more than 3 replies, none missing or twice", n)
	got := fmt.Sprintf("%d entries in %d replies, %d missing, %d twice", len(seen)-2, replies, missing, dups)
	if replies <= 3 || dups != 0 || missing != 0 || len(seen) != n+2 {
		t.Errorf("got %s, want %s", got, want)
	}
	hostile.Row(t, secDirs, fmt.Sprintf("readdir of a directory of %d 205-byte names", n), want+"; opener fds unchanged", got)

	// Removed midway: the first reply comes, then the directory goes.
	l, _, e := p.readDir(100, big, 0)
	if e.Reason != protocol.ReasonOK || !l.More {
		t.Fatalf("first reply: %+v %+v", l, e)
	}
	testutil.Must(t, os.RemoveAll(big))
	_, _, e = p.readDir(101, big, l.Cookie)
	gotS := hostile.ReplyText(101, e.Reason, syscall.Errno(e.Errno))
	wantS := hostile.ReplyText(101, protocol.ReasonSystem, unix.ENOENT)
	if gotS != wantS {
		t.Errorf("listing of a removed directory: got %s, want %s", gotS, wantS)
	}
	if got := testutil.FDs(t, p.cmd.Process.Pid); got != theirs {
		t.Errorf("opener descriptors: %d before, %d after", theirs, got)
	}
	hostile.Row(t, secDirs, "readdir resumed after the directory was removed", wantS+"; opener fds unchanged", gotS)
	// A cookie the parent made up lists what the file system makes of it,
	// of a directory the rules allow anyway: nothing beyond, nothing kept.
	testutil.Must(t, os.Mkdir(big, 0o755))
	if _, _, e := p.readDir(102, big, 1<<40); e.Reason != protocol.ReasonOK && e.Reason != protocol.ReasonSystem {
		t.Errorf("made-up cookie: got %+v", e)
	}
	if got := testutil.FDs(t, p.cmd.Process.Pid); got != theirs {
		t.Errorf("opener descriptors: %d before, %d after a made-up cookie", theirs, got)
	}
}
