//go:build linux

package broker

import (
	"context"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func startSleep(t *testing.T) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return cmd, fd
}

// startWatch runs KillWhenExits under ctx on two sleeping processes, a
// supervisor and a program, and returns them, the program's pidfd and
// the channel its result arrives on.
func startWatch(t *testing.T, ctx context.Context) (sup, prog *exec.Cmd, progFD int, done <-chan error) {
	t.Helper()
	sup, supFD := startSleep(t)
	prog, progFD = startSleep(t)
	result := make(chan error, 1)
	go func() { result <- KillWhenExits(ctx, supFD, progFD) }()
	return sup, prog, progFD, result
}

func TestKillWhenExitsKillsProgram(t *testing.T) {
	sup, prog, _, done := startWatch(t, context.Background())
	sup.Process.Kill()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err := prog.Wait()
	ws, ok := prog.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("program after its supervisor died: %v, want killed by SIGKILL", err)
	}
}

func TestKillWhenExitsProgramExitsFirst(t *testing.T) {
	sup, prog, _, done := startWatch(t, context.Background())
	prog.Process.Kill()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sup.ProcessState != nil {
		t.Error("the supervisor was touched")
	}
}

func TestKillWhenExitsCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, _, progFD, done := startWatch(t, ctx)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := unix.PidfdSendSignal(progFD, 0, nil, 0); err != nil {
		t.Errorf("the program is gone after a cancelled watch: %v", err)
	}
}
