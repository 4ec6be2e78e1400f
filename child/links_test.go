//go:build linux

package child_test

// Containment attacks on what a rule's tree holds: a hard link to a file
// outside it (item 8 of "containment everywhere"), and a narrower rule
// inside a broader tree reached through a symlink or a rename (item 5).

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

const secContain = "opener: what a rule's tree holds (links, narrower rules)"

// linkFixture is a root-only file outside any rule, and a tree rule's
// directory holding a hard link to it, next to a plain file.
type linkFixture struct {
	secret string // outside every rule, mode 0600, owned by root
	tree   string // the rule's directory
	link   string // tree/link: a second name of secret
	plain  string // tree/plain: a file with one link
}

const secretText = "root only\n"

func newLinkFixture(t *testing.T) linkFixture {
	t.Helper()
	testutil.NeedRoot(t, "the attack links a root-only file into a tree")
	f := linkFixture{secret: filepath.Join(t.TempDir(), "shadow"), tree: filepath.Join(t.TempDir(), "tree")}
	f.link, f.plain = filepath.Join(f.tree, "link"), filepath.Join(f.tree, "plain")
	testutil.Must(t, os.WriteFile(f.secret, []byte(secretText), 0o600))
	testutil.Must(t, os.Mkdir(f.tree, 0o777))
	testutil.Must(t, os.WriteFile(f.plain, []byte("plain\n"), 0o644))
	// The attacker is whoever can write in the tree. With
	// fs.protected_hardlinks=0 any user may link(2) a file it does not own
	// and cannot read; with 1 (most distributions' default) the kernel
	// stops that user. The opener must not depend on the sysctl, so the
	// test makes the link as root, which the sysctl never stops: the file
	// in the tree is then exactly what the attacker leaves there on a
	// machine with protected_hardlinks=0.
	testutil.Must(t, unix.Link(f.secret, f.link))
	return f
}

// TestHostileHardLinkInTree: a parent that can write in an rw tree places a
// hard link there to a root-only file and asks the opener for it, to read,
// to write and to truncate. Before the fix the opener handed out a
// read-write descriptor to the root-only file; now it refuses every one
// (reason links, EACCES), the file is untouched, and a rule with
// hardlinks=yes opts in.
func TestHostileHardLinkInTree(t *testing.T) {
	forBoth(t, func(t *testing.T, fallback bool) {
		fx := newLinkFixture(t)
		before := testutil.FDs(t, os.Getpid())
		// Registered first, so it runs after the openers' own cleanups.
		t.Cleanup(func() {
			if after := testutil.FDs(t, os.Getpid()); after != before {
				t.Errorf("descriptors: %d before, %d after", before, after)
			}
		})
		o := startPolicy(t, fallback, quoteRule("rw", fx.tree+"/"))
		for _, tc := range []struct {
			name string
			flag int
		}{
			{"read", os.O_RDONLY},
			{"read-write", os.O_RDWR},
			{"write and truncate", os.O_WRONLY | os.O_TRUNC},
			{"append", os.O_WRONLY | os.O_APPEND},
		} {
			f, err := openVia(t, o, fx.link, tc.flag, 0)
			want := "refused: links, " + hostile.Errno(unix.EACCES)
			got := "opened"
			var re *parent.RefusedError
			if errors.As(err, &re) {
				got = "refused: " + reasonName(re.Reason) + ", " + hostile.Errno(re.Errno)
			} else if err != nil {
				got = err.Error()
			}
			hostile.Row(t, secContain, "hard link to a root-only file in an rw tree: "+tc.name, want, got)
			if err == nil {
				t.Errorf("%s of a hard link to a root-only file: got %s opened, want a refusal", tc.name, f.Name())
				continue
			}
			if re == nil || re.Reason != protocol.ReasonLinks || !errors.Is(err, syscall.EACCES) || !errors.Is(err, parent.ErrDenied) || !errors.Is(err, fs.ErrPermission) {
				t.Errorf("%s of a hard link: got %v, want reason links, EACCES, matching ErrDenied", tc.name, err)
			}
			if !strings.Contains(err.Error(), "hardlinks=yes") {
				t.Errorf("%s: error %q does not say how to opt in", tc.name, err)
			}
		}
		if got, err := os.ReadFile(fx.secret); err != nil || string(got) != secretText {
			t.Errorf("root-only file after the refusals: %q, %v; want it untouched", got, err)
		}
		// A file with one link is served as ever, O_TRUNC included (the
		// opener truncates only once the link count passed).
		f := mustOpenVia(t, o, fx.plain, os.O_WRONLY|os.O_TRUNC, 0)
		f.Close()
		if st := statOf(t, fx.plain); st.Size != 0 {
			t.Errorf("O_TRUNC of a file with one link: size %d, want 0", st.Size)
		}
		// Directories have several links by nature; the check is not
		// about them.
		if d, err := openVia(t, o, fx.tree, os.O_RDONLY, 0); err != nil {
			var re *parent.RefusedError
			if errors.As(err, &re) && re.Reason == protocol.ReasonLinks {
				t.Errorf("the tree's directory: got %v, want no link refusal", err)
			}
		} else {
			d.Close()
		}

		// The rule opts in.
		o = startPolicy(t, fallback, quoteRule("rw", fx.tree+"/", "hardlinks=yes"))
		f = mustOpenVia(t, o, fx.link, os.O_RDONLY, 0)
		got := make([]byte, 64)
		n, _ := f.Read(got)
		f.Close()
		if string(got[:n]) != secretText {
			t.Errorf("with hardlinks=yes: read %q, want %q", got[:n], secretText)
		}
	})
}

// TestHardLinkRefusalIsAudited: the opener's log says why, with the rule.
func TestHardLinkRefusalIsAudited(t *testing.T) {
	fx := newLinkFixture(t)
	p := start(t, quoteRule("rw", fx.tree+"/"))
	fd, e := openRaw(p, 1, fx.link, unix.O_RDWR, 0)
	if fd >= 0 {
		unix.Close(fd)
		t.Fatal("hard link: got a descriptor, want a refusal")
	}
	if e.Reason != protocol.ReasonLinks || syscall.Errno(e.Errno) != unix.EACCES {
		t.Errorf("hard link: got %+v, want reason links, EACCES", e)
	}
	testutil.Must(t, unix.Shutdown(p.sock, unix.SHUT_WR))
	if code := p.exit(); code != protocol.ExitOK {
		t.Errorf("exit status %d", code)
	}
	log := p.stderr.String()
	if !strings.Contains(log, `"why":"multiply-linked file (st_nlink 2); the rule has no hardlinks=yes"`) || !strings.Contains(log, `"@level":"warn"`) {
		t.Errorf("opener log: want a warning naming the multiply-linked file; got:\n%s", log)
	}
}

// TestHostileNarrowerRuleInTree: with rwc:/app/ and r:/app/key, a parent
// that can write in /app/ reaches the key through the tree rule, with
// write access, by a symlink /app/link -> key or by renaming the key to
// another name in /app/. First the attack, under the tree rule alone,
// to show what the narrower rule would have had to stop; then the policy
// with both rules, which parent.Start and a hostile parent's hello are
// refused: a narrower rule inside a broader tree cannot be enforced by
// path.
func TestHostileNarrowerRuleInTree(t *testing.T) {
	app := filepath.Join(t.TempDir(), "app")
	testutil.Must(t, os.Mkdir(app, 0o755))
	key := filepath.Join(app, "key")
	testutil.Must(t, os.WriteFile(key, []byte("key\n"), 0o600))
	tree, narrow := "rwc:"+app+"/", "r:"+key

	// The attack: both routes reach the key's inode for writing.
	o := startPolicy(t, false, quoteRule("rwc", app+"/"))
	testutil.Must(t, os.Symlink("key", filepath.Join(app, "link")))
	f := mustOpenVia(t, o, filepath.Join(app, "link"), os.O_RDWR, 0)
	if st, kst := fstatOf(t, f), statOf(t, key); st.Ino != kst.Ino {
		t.Fatalf("symlink: opened inode %d, want the key's %d", st.Ino, kst.Ino)
	}
	f.Close()
	testutil.Must(t, os.Rename(key, filepath.Join(app, "moved")))
	f = mustOpenVia(t, o, filepath.Join(app, "moved"), os.O_RDWR, 0)
	f.Close()
	testutil.Must(t, os.Rename(filepath.Join(app, "moved"), key))

	// Config.Rules are command-line rules, named by their flag.
	wantErr := `rule "` + narrow + `" (--allow ` + narrow + `) lies inside tree rule "` + tree + `" (--allow ` + tree + `), which grants more (w, c) through any link or rename into it`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, rules := range [][]string{{tree, narrow}, {narrow, tree}} {
		o, err := parent.Start(ctx, parent.Config{Rules: rules})
		got := "started"
		var ne *policy.NestingError
		switch {
		case errors.As(err, &ne) && strings.Contains(err.Error(), wantErr):
			got = "refused at load, naming both rules"
		case err != nil:
			got = err.Error()
		default:
			o.Close()
		}
		hostile.Row(t, secContain, "rwc:/app/ and r:/app/key through parent.Start", "refused at load, naming both rules", got)
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parent.Start(%q): got %v, want a *policy.NestingError %q", rules, err, wantErr)
		}
	}

	// A hostile parent sends the policy in its hello anyway: the opener
	// compiles it with the same check and refuses the handshake.
	p := hostile.Spawn(t, "info")
	p.MustSendRaw(hostile.Message(protocol.TypeHello, 0, 0, hostile.HelloPayload(1, 0, 2, 0, []byte(tree), []byte(narrow))), nil)
	code, got, msgs, err := p.Finish()
	want := hostile.ReplyText(0, protocol.ReasonProtocol, unix.EINVAL) + ", then exit 3"
	hostile.Row(t, secContain, "hello with rwc:/app/ and r:/app/key", want, got)
	if err != nil {
		t.Fatal(err)
	}
	if code != protocol.ExitProtocol || len(msgs) != 1 {
		t.Errorf("hello with a nested narrower rule: got %s, want %s", got, want)
	} else if _, err := hostile.CheckError(msgs[0], 0, protocol.ReasonProtocol, unix.EINVAL); err != nil {
		t.Errorf("last words: %v", err)
	}
	if !strings.Contains(p.Stderr(), "lies inside tree rule") {
		t.Errorf("opener log does not name the nesting: %s", p.Stderr())
	}
}

// reasonName names a reason in the rows, as hostile.Describe does.
func reasonName(r protocol.Reason) string {
	if r == protocol.ReasonLinks {
		return "links"
	}
	return r.String()
}
