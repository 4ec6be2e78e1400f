//go:build linux

package main

// privsep serve as a process the tests start, watch through its log and
// stop, and the credentials its clients run with.

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveLog collects a server's stderr.
type serveLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serveLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// with returns the lines that contain every one of subs.
func (l *serveLog) with(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, s := range l.lines {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// await waits up to a few seconds for lines that contain every one of
// subs (the server's stderr is read as it comes) and returns them.
func (l *serveLog) await(subs ...string) []string {
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := l.with(subs...)
		if len(got) > 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveProc is a running "privsep serve".
type serveProc struct {
	cmd    *exec.Cmd
	sock   string
	log    *serveLog
	exited chan struct{}
	code   int
}

// startServe runs "privsep serve --socket sock ARGS..." and waits until it
// listens. It is stopped (SIGTERM) when the test ends.
func startServe(t *testing.T, sock string, args ...string) *serveProc {
	t.Helper()
	s, err := tryServe(t, sock, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryServe is startServe that reports a server that exits instead.
func tryServe(t *testing.T, sock string, args ...string) (*serveProc, error) {
	t.Helper()
	s := &serveProc{sock: sock, log: &serveLog{}, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve", "--socket", sock}, args...)...)
	// The server's stderr goes through a copying goroutine that Wait
	// bounds (WaitDelay): a process that inherited the pipe's write end
	// (any child forked concurrently by another test, before its execve)
	// must not keep this test waiting for end of file once the server is
	// gone.
	stderr, logw := io.Pipe()
	s.cmd.Stderr = logw
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			s.log.add(sc.Text())
			if strings.Contains(sc.Text(), "listening") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		s.cmd.Wait()
		logw.Close()
		s.code = s.cmd.ProcessState.ExitCode()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.After(cmdTimeout)
	for {
		select {
		case <-ready:
			return s, nil
		case <-s.exited:
			return s, errors.New("privsep serve exited with status " + strconv.Itoa(s.code) + ": " + s.log.String())
		case <-deadline:
			return s, errors.New("privsep serve not listening after " + cmdTimeout.String() + ": " + s.log.String())
		case <-time.After(10 * time.Millisecond):
			// Quieter log levels do not say "listening"; the kernel does.
			if listening(sock) {
				return s, nil
			}
		}
	}
}

// listening reports whether a socket listens at path, from /proc/net/unix,
// without connecting to it.
func listening(path string) bool {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(l)
		if len(f) == 8 && f[7] == path {
			flags, err := strconv.ParseUint(f[3], 16, 32)
			if err == nil && flags&0x10000 != 0 { // __SO_ACCEPTCON
				return true
			}
		}
	}
	return false
}

// stop sends SIGTERM and returns the exit status and how long it took.
func (s *serveProc) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(cmdTimeout):
		t.Fatalf("privsep serve still running %v after SIGTERM; log:\n%s", cmdTimeout, s.log)
	}
	return s.code, time.Since(start)
}

// as runs a command with other credentials (supplementary groups cleared).
func as(uid, gid uint32) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	}
}
