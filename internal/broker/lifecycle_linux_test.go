//go:build linux && (amd64 || arm64)

package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBrokerSupervisorDeathFailsPendingCalls kills the supervisor while
// it holds a call unanswered: the pending call and every later one fail
// with ENOSYS, and the program runs on to its end instead of hanging.
func TestBrokerSupervisorDeathFailsPendingCalls(t *testing.T) {
	supervisorDeath(t, false)
}

// TestBrokerSupervisorDeathKillsProgram: the same with KillWhenExits
// watching (this test process plays the watcher): the program is killed,
// and prints nothing after the first, served open.
func TestBrokerSupervisorDeathKillsProgram(t *testing.T) {
	supervisorDeath(t, true)
}

func supervisorDeath(t *testing.T, watch bool) {
	needRoot(t)
	f := newFixture(t)
	block := filepath.Join(f.base, "priv", "block")
	toProg, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	self, _ := os.Executable()
	sup := exec.CommandContext(ctx, self, "r:"+f.privKey)
	sup.Env = append(os.Environ(), roleEnv+"=supervisor")
	supOut, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var supErr bytes.Buffer
	sup.Stderr = &supErr
	supEnd := os.NewFile(uintptr(toProg[0]), "sup")
	progEnd := os.NewFile(uintptr(toProg[1]), "prog")
	sup.ExtraFiles = []*os.File{supEnd}
	script := `import os, sys
print(open(sys.argv[1]).read(), end="", flush=True)
for p in (sys.argv[2], sys.argv[1]):
    try:
        open(p)
        print("opened", flush=True)
    except OSError as e:
        print("errno", e.errno, flush=True)
`
	prog := exec.CommandContext(ctx, self, python, "-c", script, f.privKey, block)
	prog.Env = append(os.Environ(), roleEnv+"=trampoline", execRoleEnv+"=")
	var progOut, progErr bytes.Buffer
	prog.Stdout, prog.Stderr = &progOut, &progErr
	prog.ExtraFiles = []*os.File{progEnd}
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	if err := prog.Start(); err != nil {
		t.Fatal(err)
	}
	supEnd.Close()
	progEnd.Close()
	head := make([]byte, len("listener 123\n"))
	if _, err := io.ReadFull(supOut, head); err != nil {
		sup.Process.Kill()
		prog.Process.Kill()
		t.Fatalf("supervisor: %q, %v; stderr %s; program stderr %s", head, err, supErr.String(), progErr.String())
	}
	watched := make(chan error, 1)
	if watch {
		supFD, err := unix.PidfdOpen(sup.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(supFD)
		progFD, err := unix.PidfdOpen(prog.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(progFD)
		// The watcher holds a copy of the listener: while it does, the
		// dead supervisor's pending call waits instead of failing, so the
		// program is killed before it sees an ENOSYS.
		var lfdNum int
		fmt.Sscanf(string(head), "listener %d", &lfdNum)
		lcopy, err := unix.PidfdGetfd(supFD, lfdNum, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lcopy)
		go func() { watched <- KillWhenExits(ctx, supFD, progFD) }()
	}
	line := make([]byte, len("blocked\n"))
	if _, err := io.ReadFull(supOut, line); err != nil || string(line) != "blocked\n" {
		sup.Process.Kill()
		prog.Process.Kill()
		t.Fatalf("supervisor did not block a call: %q, %v; stderr %s; program stderr %s", line, err, supErr.String(), progErr.String())
	}
	sup.Process.Kill()
	sup.Wait()
	err = prog.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the program hung after its supervisor died")
	}
	if watch {
		if werr := <-watched; werr != nil {
			t.Errorf("KillWhenExits: %v", werr)
		}
		ws, _ := prog.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL || progOut.String() != "priv key\n" {
			t.Errorf("program after supervisor death: %v, stdout %q; want killed by SIGKILL after %q", err, progOut.String(), "priv key\n")
		}
		return
	}
	want := "priv key\nerrno 38\nerrno 38\n"
	if progOut.String() != want {
		t.Errorf("program after supervisor death: stdout %q, stderr %q, %v; want %q", progOut.String(), progErr.String(), err, want)
	}
}

// TestServeCancelFailsLaterCalls cancels Serve while the program runs:
// Serve returns context.Canceled and closes the listener, and the
// program's next open fails with ENOSYS instead of waiting for an answer
// nobody will give.
func TestServeCancelFailsLaterCalls(t *testing.T) {
	needRoot(t)
	f := newFixture(t)
	d := newTestDecider(t, "r:"+f.privKey)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	guard, cancelGuard := context.WithTimeout(context.Background(), hangGuard)
	defer cancelGuard()
	self, _ := os.Executable()
	script := `import sys
print(open(sys.argv[1]).read(), end="", flush=True)
sys.stdin.readline()
try:
    open(sys.argv[1])
    print("opened")
except OSError as e:
    print("errno", e.errno)
`
	cmd := exec.CommandContext(guard, self, python, "-c", script, f.privKey)
	cmd.Env = append(os.Environ(), roleEnv+"=trampoline", execRoleEnv+"=")
	theirs := os.NewFile(uintptr(sp[1]), "theirs")
	cmd.ExtraFiles = []*os.File{theirs}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	lfd, err := recvListener(sp[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(guard)
	serveErr := make(chan error, 1)
	go func() { serveErr <- Serve(ctx, lfd, d) }()
	unix.Write(sp[0], []byte{'A'})
	line := make([]byte, len("priv key\n"))
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "priv key\n" {
		t.Fatalf("first open: %q, %v", line, err)
	}
	cancel()
	if err := <-serveErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel: %v, want context.Canceled", err)
	}
	stdin.Write([]byte("\n"))
	rest, _ := io.ReadAll(stdout)
	cmd.Wait()
	if guard.Err() != nil {
		t.Fatal("the program hung after Serve was cancelled")
	}
	if string(rest) != "errno 38\n" {
		t.Errorf("open after Serve ended: %q, want errno 38 (ENOSYS)", rest)
	}
}
