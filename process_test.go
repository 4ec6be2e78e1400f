//go:build linux

package main

// Helpers for the processes the tests start and watch: privsep with its
// output read as it comes, and the children it starts (the opener).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/privsep-go/privsep/internal/testutil"
)

// startReading starts cmd with a pipe from its standard output and returns
// the pipe's read end. A test that also writes to the command asks for
// cmd.StdinPipe first.
func startReading(t *testing.T, cmd *exec.Cmd) io.ReadCloser {
	t.Helper()
	out, err := cmd.StdoutPipe()
	testutil.Must(t, err)
	testutil.Must(t, cmd.Start())
	return out
}

// procState returns pid's state letter and its parent's pid from
// /proc/PID/stat, ok false when pid has gone (or was never there).
func procState(pid string) (state byte, ppid string, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, "", false
	}
	return fields[0][0], fields[1], true
}

// children returns the pids of pid's children, zombies included.
func children(pid int) []int {
	var kids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procState(e.Name()); ok && ppid == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids
}

// childOf returns the pid of a child process of ppid that has not exited,
// waiting up to timeout for one to appear.
func childOf(ppid int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, pid := range children(ppid) {
			if !gone(pid) {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no child of pid %d after %v", ppid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether pid has exited (it may still be a zombie).
func gone(pid int) bool {
	state, _, ok := procState(strconv.Itoa(pid))
	return !ok || state == 'Z' || state == 'X'
}
