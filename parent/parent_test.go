//go:build linux

package parent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

// tree makes a directory with files for the tests and returns its path:
//
//	root/a.txt            "alpha"
//	root/sub/b.txt        "beta"
//	root/fifo             a FIFO
//	root/in -> a.txt      a symlink that stays inside
//	root/out -> /etc/passwd  a symlink that escapes
//	root/up -> ../secret  a symlink that escapes upwards
//	secret                "secret", beside root
func tree(t *testing.T) (root, secret string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	secret = filepath.Join(base, "secret")
	testutil.Must(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	testutil.Must(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("alpha"), 0o644))
	testutil.Must(t, os.WriteFile(filepath.Join(root, "sub", "b.txt"), []byte("beta"), 0o644))
	testutil.Must(t, os.WriteFile(secret, []byte("secret"), 0o644))
	testutil.Must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	testutil.Must(t, os.Symlink("a.txt", filepath.Join(root, "in")))
	testutil.Must(t, os.Symlink("/etc/passwd", filepath.Join(root, "out")))
	testutil.Must(t, os.Symlink("../secret", filepath.Join(root, "up")))
	return root, secret
}

func start(t *testing.T, cfg parent.Config) *parent.Opener {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := parent.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func read(t *testing.T, o *parent.Opener, path string) (string, error) {
	t.Helper()
	f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b), nil
}

func TestOpenAndRefusals(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			root, secret := tree(t)
			o := start(t, parent.Config{
				Rules:          []string{root + "/", filepath.Join(root, "sub", "b.txt")},
				DisableOpenat2: fallback,
			})
			if got, want := o.Openat2(), !fallback; got != want {
				t.Fatalf("Openat2() = %v, want %v", got, want)
			}
			for _, tc := range []struct {
				path string
				want string // content, or "" when an error is expected
				is   []error
				not  []error
				in   string // substring of the error text
			}{
				{path: root + "/a.txt", want: "alpha"},
				{path: root + "/sub/b.txt", want: "beta"},
				{path: root + "/missing", is: []error{fs.ErrNotExist}, not: []error{parent.ErrDenied}},
				{path: secret, is: []error{parent.ErrDenied, fs.ErrPermission}, in: "denied by policy"},
				{path: root + "x/a.txt", is: []error{parent.ErrDenied}, in: "denied by policy"},
				{path: root + "/../secret", is: []error{syscall.EINVAL}, not: []error{parent.ErrDenied}, in: "not clean"},
				{path: root + "/", is: []error{syscall.EINVAL}, in: "not clean"},
				{path: "relative", is: []error{syscall.EINVAL}, in: "not absolute"},
				{path: root + "/out", is: []error{parent.ErrDenied, fs.ErrPermission}, in: "would leave its rule's directory"},
				{path: root + "/up", is: []error{parent.ErrDenied}, in: "would leave its rule's directory"},
				{path: root + "/fifo", is: []error{parent.ErrDenied, fs.ErrPermission}, in: "not a regular file"},
			} {
				got, err := read(t, o, tc.path)
				if tc.want != "" {
					if err != nil || got != tc.want {
						t.Errorf("%s: got %q, %v; want %q", tc.path, got, err, tc.want)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: got content %q, want an error", tc.path, got)
					continue
				}
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != tc.path || pe.Op != "open" {
					t.Errorf("%s: got %#v, want *fs.PathError for op open on the path", tc.path, err)
				}
				for _, target := range tc.is {
					if !errors.Is(err, target) {
						t.Errorf("%s: %v does not match %v", tc.path, err, target)
					}
				}
				for _, target := range tc.not {
					if errors.Is(err, target) {
						t.Errorf("%s: %v matches %v, want it not to", tc.path, err, target)
					}
				}
				if !strings.Contains(err.Error(), tc.in) {
					t.Errorf("%s: got %q, want it to contain %q", tc.path, err, tc.in)
				}
			}
			// A symlink that stays inside the tree is followed by openat2 and
			// refused by the fallback, which follows none.
			got, err := read(t, o, root+"/in")
			if fallback {
				if !errors.Is(err, parent.ErrDenied) {
					t.Errorf("fallback: %s/in: got %q, %v; want a refusal", root, got, err)
				}
			} else if got != "alpha" {
				t.Errorf("%s/in: got %q, %v; want %q", root, got, err, "alpha")
			}
			// The tree rule allows listing its directory, but keeps its
			// descriptor back (no dirs=yes).
			f, err := o.Open(context.Background(), root, os.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err == nil {
				f.Close()
			}
			var re *parent.RefusedError
			if !errors.As(err, &re) || re.Reason != protocol.ReasonDirectory || !errors.Is(err, parent.ErrDenied) || !errors.Is(err, syscall.EACCES) {
				t.Errorf("opening the rule's directory: got %v, want a refusal with ReasonDirectory and EACCES", err)
			}
			names, err := o.ReadDir(context.Background(), root)
			if err != nil || len(names) != 6 {
				t.Errorf("listing %s: got %v, %v; want 6 names", root, names, err)
			}
		})
	}
}

func TestFlagsRefused(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	path := root + "/a.txt"
	for _, tc := range []struct {
		flag   int
		denied bool
		errno  syscall.Errno
	}{
		{os.O_WRONLY, true, syscall.EACCES},
		{os.O_RDWR, true, syscall.EACCES},
		{os.O_RDONLY | os.O_TRUNC, false, syscall.EINVAL},
		{os.O_RDONLY | os.O_CREATE, true, syscall.EACCES},
		{os.O_WRONLY | os.O_APPEND, true, syscall.EACCES},
		{3, false, syscall.EINVAL},
		{unix.O_NOATIME, false, syscall.EINVAL},
		{unix.O_PATH, false, syscall.EINVAL},
		{unix.O_DIRECT, false, syscall.EINVAL},
	} {
		f, err := o.Open(context.Background(), path, tc.flag, 0o644)
		if err == nil {
			f.Close()
			t.Errorf("flag %#x: opened, want a refusal", tc.flag)
			continue
		}
		if got := errors.Is(err, parent.ErrDenied); got != tc.denied {
			t.Errorf("flag %#x: %v: denied = %v, want %v", tc.flag, err, got, tc.denied)
		}
		if !errors.Is(err, tc.errno) {
			t.Errorf("flag %#x: %v, want errno %v", tc.flag, err, tc.errno)
		}
	}
	// Accepted extras: O_NONBLOCK stays set on the descriptor, and a
	// descriptor opened without it is blocking (the opener's own
	// O_NONBLOCK is removed).
	for _, flag := range []int{os.O_RDONLY, os.O_RDONLY | syscall.O_NONBLOCK, os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NOCTTY} {
		f, err := o.Open(context.Background(), path, flag, 0)
		if err != nil {
			t.Errorf("flag %#x: %v", flag, err)
			continue
		}
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fl&unix.O_NONBLOCK != 0, flag&syscall.O_NONBLOCK != 0; got != want {
			t.Errorf("flag %#x: O_NONBLOCK on the descriptor = %v, want %v", flag, got, want)
		}
	}
}

func TestCloseLifecycle(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	pid := o.PID()
	if _, err := read(t, o, root+"/a.txt"); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	select {
	case <-o.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := o.Err(); err != parent.ErrClosed {
		t.Errorf("Err after Close: got %v, want ErrClosed", err)
	}
	if err := o.Close(); err != parent.ErrClosed {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
	if _, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0); err != parent.ErrClosed {
		t.Errorf("Open after Close: got %v, want ErrClosed", err)
	}
	if _, err := o.OpenBatch(context.Background(), []parent.Request{{Path: root + "/a.txt"}}); err != parent.ErrClosed {
		t.Errorf("OpenBatch after Close: got %v, want ErrClosed", err)
	}
	// The opener was waited for: its pid is gone.
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Errorf("kill(%d, 0) after Close: got %v, want ESRCH", pid, err)
	}
}

func TestCloseWithCallsInFlight(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	var wg sync.WaitGroup
	errs := make(chan error, 16*50)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				f, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
				if err == nil {
					f.Close()
					continue
				}
				errs <- err
				return
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := o.Close(); err != nil {
		t.Errorf("Close during calls: got %v, want nil", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != parent.ErrClosed {
			t.Errorf("a call racing Close: got %v, want success or ErrClosed", err)
		}
	}
}

func TestChildKilled(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	goroutines := runtime.NumGoroutine()
	// Stop the opener so that requests pile up, then kill it with 100
	// requests in flight from 16 goroutines.
	stop(t, o.PID())
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 16; g++ {
		n := 100 / 16
		if g < 100%16 {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				_, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
				errs <- err
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGKILL))
	waitCalls(t, &wg, "the opener was killed")
	close(errs)
	n := 0
	for err := range errs {
		n++
		var ee *parent.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("call after kill: got %v, want *ExitError", err)
		}
		ws, ok := ee.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("ExitError status: got %v, want killed by SIGKILL", ee.ProcessState)
		}
	}
	if n != 100 {
		t.Errorf("got %d results, want 100", n)
	}
	<-o.Done()
	var ee *parent.ExitError
	if err := o.Close(); !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Errorf("Close after kill: got %v, want *ExitError for a signal", err)
	}
	if _, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0); err == nil {
		t.Error("Open after the opener died succeeded")
	}
	waitGoroutines(t, goroutines)
}

// stop stops pid with SIGSTOP and waits until every thread has stopped: a
// worker already past recvmsg could otherwise still answer.
func stop(t *testing.T, pid int) {
	t.Helper()
	testutil.Must(t, unix.Kill(pid, unix.SIGSTOP))
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		testutil.Must(t, err)
		stopped := 0
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				continue
			}
			// The state follows the command name in parentheses.
			if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'T' {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: %d of %d threads stopped after 5s", pid, stopped, len(tasks))
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGoroutines waits for the goroutine count to come back to want (or
// below): the calls' goroutines are gone and the opener left none behind.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("got %d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChildDiesWhileIdle(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGTERM))
	select {
	case <-o.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the opener died")
	}
	var ee *parent.ExitError
	if err := o.Err(); !errors.As(err, &ee) {
		t.Fatalf("Err: got %v, want *ExitError", err)
	}
	if !strings.Contains(ee.Error(), "terminated") {
		t.Errorf("ExitError text %q does not name the signal", ee.Error())
	}
	if _, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0); !errors.As(err, &ee) {
		t.Errorf("Open after death: got %v, want *ExitError", err)
	}
}

func TestDeadlineWhileStopped(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	fdsBefore := testutil.FDs(t, 0)
	stop(t, o.PID())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := o.Open(ctx, root+"/a.txt", os.O_RDONLY, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open on a stopped opener: got %v, want DeadlineExceeded", err)
	}
	// A cancelled (not timed out) context is noticed too.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = o.Open(ctx, root+"/a.txt", os.O_RDONLY, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context: got %v, want Canceled", err)
	}
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGCONT))
	// The next call works, and the replies to the abandoned calls have been
	// received and their descriptors closed.
	if got, err := read(t, o, root+"/a.txt"); err != nil || got != "alpha" {
		t.Fatalf("after SIGCONT: got %q, %v", got, err)
	}
	if got := testutil.FDs(t, 0); got != fdsBefore {
		t.Errorf("descriptors after abandoned calls: got %d, want %d", got, fdsBefore)
	}
}

func TestDescriptorAccounting(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/", "/etc/hostname"}})
	// Warm up so that lazily created runtime descriptors exist before we
	// count.
	if _, err := read(t, o, root+"/a.txt"); err != nil {
		t.Fatal(err)
	}
	pid := o.PID()
	mine, theirs := testutil.FDs(t, 0), testutil.FDsSettled(t, pid, -1)
	ctx := context.Background()
	paths := []string{root + "/a.txt", root + "/sub/b.txt", root + "/missing", root + "/out",
		root + "/fifo", root + "/../x", "/etc/passwd", root, "/etc/hostname"}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				p := paths[(g+i)%len(paths)]
				switch i % 5 {
				case 0, 1, 2:
					if f, err := o.Open(ctx, p, os.O_RDONLY, 0); err == nil {
						f.Close()
					}
				case 3:
					reqs := make([]parent.Request, 0, len(paths))
					for _, p := range paths {
						reqs = append(reqs, parent.Request{Path: p})
					}
					res, err := o.OpenBatch(ctx, reqs)
					if err != nil {
						t.Error(err)
						return
					}
					for _, r := range res {
						if r.File != nil {
							r.File.Close()
						}
					}
				case 4:
					// Give up on a call straight away: its reply must be
					// closed by whoever receives it.
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					if f, err := o.Open(cctx, p, os.O_RDONLY, 0); err == nil {
						f.Close()
					}
				}
			}
		}(g)
	}
	wg.Wait()
	// One more round trip flushes any reply still in the socket.
	if _, err := read(t, o, root+"/a.txt"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.FDs(t, 0); got != mine {
		t.Errorf("parent descriptors: got %d, want %d", got, mine)
	}
	if got := testutil.FDsSettled(t, pid, theirs); got != theirs {
		t.Errorf("opener descriptors: got %d, want %d", got, theirs)
		t.Logf("opener descriptors: %s", testutil.FDList(pid))
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("bad rule", func(t *testing.T) {
		_, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/a/../b"}})
		if err == nil || !strings.Contains(err.Error(), "not clean") {
			t.Errorf("got %v, want a policy error naming the rule", err)
		}
	})
	t.Run("program without child.Init", func(t *testing.T) {
		_, err := parent.Start(context.Background(), parent.Config{Executable: "/bin/true"})
		var ee *parent.ExitError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "child.Init") {
			t.Errorf("got %v, want an *ExitError that mentions child.Init", err)
		}
	})
	t.Run("no ready before timeout", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "silent")
		testutil.Must(t, os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755))
		begin := time.Now()
		_, err := parent.Start(context.Background(), parent.Config{Executable: script, StartTimeout: 200 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want DeadlineExceeded", err)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("Start took %v to give up", d)
		}
	})
	t.Run("missing executable", func(t *testing.T) {
		_, err := parent.Start(context.Background(), parent.Config{Executable: "/nonexistent/privsep"})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v, want ErrNotExist", err)
		}
	})
	t.Run("recursion guard", func(t *testing.T) {
		t.Setenv("PRIVSEP_OPENER", "1")
		_, err := parent.Start(context.Background(), parent.Config{})
		if err == nil || !strings.Contains(err.Error(), "child.Init") {
			t.Errorf("got %v, want a refusal that mentions child.Init", err)
		}
	})
}

func TestLogForwarding(t *testing.T) {
	root, secret := tree(t)
	var buf testutil.LogBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &buf})
	o := start(t, parent.Config{Rules: []string{root + "/"}, Logger: log})
	denyThenGrant(t, o, root, secret)
	out := buf.String()
	for _, want := range []string{
		"[WARN]  child: denied:", "path=" + secret, `reason="denied by policy"`,
		"[DEBUG] child: granted:", "path=" + root + "/a.txt", "rule=r:" + root + "/",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not contain %q:\n%s", want, out)
		}
	}
}

func TestBatch(t *testing.T) {
	root, secret := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	// More items than one message may carry, and long paths, so that the
	// batch is split by count and by size.
	long := root + "/" + strings.Repeat("d", 200)
	testutil.Must(t, os.Mkdir(long, 0o755))
	testutil.Must(t, os.WriteFile(long+"/f", []byte("long"), 0o644))
	var reqs []parent.Request
	var want []string
	for i := 0; i < 700; i++ {
		switch i % 4 {
		case 0:
			reqs, want = append(reqs, parent.Request{Path: root + "/a.txt"}), append(want, "alpha")
		case 1:
			reqs, want = append(reqs, parent.Request{Path: long + "/f"}), append(want, "long")
		case 2:
			reqs, want = append(reqs, parent.Request{Path: secret}), append(want, "denied")
		case 3:
			reqs, want = append(reqs, parent.Request{Path: root + "/x/../a.txt"}), append(want, "bad")
		}
	}
	before := testutil.FDs(t, 0)
	res, err := o.OpenBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(reqs) {
		t.Fatalf("got %d results, want %d", len(res), len(reqs))
	}
	for i, r := range res {
		switch want[i] {
		case "denied":
			if !errors.Is(r.Err, parent.ErrDenied) || r.File != nil {
				t.Errorf("item %d: got %v, want a denial", i, r.Err)
			}
		case "bad":
			if !errors.Is(r.Err, syscall.EINVAL) || r.File != nil {
				t.Errorf("item %d: got %v, want EINVAL", i, r.Err)
			}
		default:
			if r.Err != nil {
				t.Errorf("item %d: %v", i, r.Err)
				continue
			}
			b, err := io.ReadAll(r.File)
			r.File.Close()
			if err != nil || string(b) != want[i] {
				t.Errorf("item %d: got %q, %v; want %q", i, b, err, want[i])
			}
		}
	}
	if got := testutil.FDs(t, 0); got != before {
		t.Errorf("descriptors after the batch: got %d, want %d", got, before)
	}
}

func TestExitStatusText(t *testing.T) {
	// The statuses PROTOCOL.md documents have names in errors.
	for code, want := range map[int]string{1: "internal error", 2: "bad invocation", 3: "protocol violation"} {
		if got := protocol.ExitStatusText(code); got != want {
			t.Errorf("ExitStatusText(%d) = %q, want %q", code, got, want)
		}
	}
}
