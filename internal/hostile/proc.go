//go:build linux

package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
)

// LowestFreeFD returns the lowest descriptor number pid does not use: the
// number its next open would get, and so the RLIMIT_NOFILE soft limit at
// which that open fails with EMFILE.
func LowestFreeFD(pid int) (int, error) {
	if pid == 0 {
		// Probe rather than list: listing opens a descriptor of its own.
		for n := 0; ; n++ {
			if _, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err == unix.EBADF {
				return n, nil
			}
		}
	}
	ents, err := os.ReadDir(testutil.ProcDir(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	used := make(map[int]bool, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			used[n] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return n, nil
}

// NoFileLimit reads pid's RLIMIT_NOFILE from /proc/PID/limits ("Max open
// files"). "unlimited" is returned as 1<<63-1.
func NoFileLimit(pid int) (soft, hard uint64, err error) {
	b, err := os.ReadFile(testutil.ProcDir(pid) + "/limits")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(f) < 2 {
			break
		}
		parse := func(s string) (uint64, error) {
			if s == "unlimited" {
				return 1<<63 - 1, nil
			}
			return strconv.ParseUint(s, 10, 64)
		}
		if soft, err = parse(f[0]); err != nil {
			return 0, 0, err
		}
		if hard, err = parse(f[1]); err != nil {
			return 0, 0, err
		}
		return soft, hard, nil
	}
	return 0, 0, errors.New("no \"Max open files\" line in " + testutil.ProcDir(pid) + "/limits")
}

// StatusField returns a field of /proc/PID/status ("VmRSS", "Threads"...)
// as its first number (kB for the Vm fields).
func StatusField(pid int, key string) (int64, error) {
	b, err := os.ReadFile(testutil.ProcDir(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s/status", key, testutil.ProcDir(pid))
}

// RSS returns pid's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	kb, err := StatusField(pid, "VmRSS")
	return kb << 10, err
}

// statFields returns the fields of a stat file after the command name:
// [0] is the state, [1] the parent pid, [11] utime, [12] stime.
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed " + path)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// State returns pid's state letter (R, S, T, Z...), or 0 if it is gone.
func State(pid int) byte {
	f, err := statFields(testutil.ProcDir(pid) + "/stat")
	if err != nil || len(f) == 0 || f[0] == "" {
		return 0
	}
	return f[0][0]
}

// Exited reports whether pid has exited: gone, or a zombie nobody reaped.
func Exited(pid int) bool {
	s := State(pid)
	return s == 0 || s == 'Z' || s == 'X'
}

// CPUTicks returns pid's user plus system time in clock ticks.
func CPUTicks(pid int) (int64, error) {
	f, err := statFields(testutil.ProcDir(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime")
	}
	return u + s, nil
}

// Stop stops pid with SIGSTOP and waits until every thread has stopped: a
// worker already past recvmsg could otherwise still answer.
func Stop(pid int, timeout time.Duration) error {
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := os.ReadDir(testutil.ProcDir(pid) + "/task")
		if err != nil {
			return err
		}
		stopped := 0
		for _, task := range tasks {
			f, err := statFields(testutil.ProcDir(pid) + "/task/" + task.Name() + "/stat")
			if err == nil && len(f) > 0 && (f[0] == "T" || f[0] == "t") {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d: %d of %d threads stopped after %v", pid, stopped, len(tasks), timeout)
		}
		time.Sleep(time.Millisecond)
	}
}
