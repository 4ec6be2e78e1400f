//go:build linux

package parent_test

// The fault suite of the parent (issue 7, RELIABILITY.md): a fake opener
// (internal/hostile/fakechild) that breaks the protocol, writes garbage logs
// or dies in every way; descriptor exhaustion on both sides; and lifecycle
// faults with their timings. Every case checks that the parent returns a
// clear error, closes every descriptor that arrived, leaves no goroutine
// behind and reports the opener's status, and logs a row of the reliability
// table (hostile.Row). Cases that need this process's own RLIMIT_NOFILE
// lowered, or this process killed, run in a re-executed test binary
// (TestFaultHelper).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/protocol"
)

const (
	secFakeProtocol = "parent: a fake opener that breaks the protocol"
	secFakeDeath    = "parent: a fake opener that dies or fails the handshake"
	secFakeLogs     = "parent: garbage on the opener's stderr"
	secExhaustion   = "descriptor exhaustion"
	secLifecycle    = "lifecycle faults"
)

// faultRoleEnv selects the role of a re-executed test binary (TestFaultHelper).
const faultRoleEnv = "PRIVSEP_FAULT_ROLE"

// faultDirEnv hands the helper a directory of test files.
const faultDirEnv = "PRIVSEP_FAULT_DIR"

// killed is how an opener the parent killed ended.
const killed = "signal killed"

// fakeCase is one misbehaviour of the fake opener, seen through the API.
type fakeCase struct {
	scenario string
	what     string
	// call makes the call that meets the misbehaviour.
	batch   bool
	readdir bool // the call is a ReadDir
	// calls before the one that must fail (they must succeed).
	okFirst int
	// cause is a substring of the error's text that names the violation.
	cause string
	// status is how the fake ends: "signal killed" when the parent kills it
	// after a violation, else its own exit.
	status string
}

// TestFaultFakeChild runs the parent against a fake opener that answers
// the handshake correctly and then breaks the protocol, or dies.
func TestFaultFakeChild(t *testing.T) {
	fc := hostile.BuildFakeChild(t)
	for _, tc := range []fakeCase{
		{scenario: "wrongid", what: "reply with an id that was never sent (with a descriptor)", cause: "unknown request id", status: killed},
		{scenario: "morefds", what: "opened whose header says 1 descriptor, 2 attached", cause: "descriptors", status: killed},
		{scenario: "fewerfds", what: "opened whose header says 2 descriptors, 1 attached", cause: "descriptors", status: killed},
		{scenario: "nofd", what: "opened with no descriptor (header nfd 0)", cause: "descriptors", status: killed},
		{scenario: "errorfd", what: "error reply with a descriptor attached", cause: "descriptors", status: killed},
		{scenario: "batchextra", what: "batch-reply with one descriptor more than OK items", batch: true, cause: "batch reply", status: killed},
		{scenario: "batchshort", what: "batch-reply with fewer items than the batch", batch: true, cause: "batch reply", status: killed},
		{scenario: "typemix", what: "an open answered by a batch-reply", cause: "batch reply", status: killed},
		{scenario: "garbage", what: "100 bytes that are not a message", cause: "malformed", status: killed},
		{scenario: "unsolicited", what: "a reply (with a descriptor) to no request, before any", cause: "unknown request id 77", status: killed},
		{scenario: "duplicate", what: "every open answered twice", okFirst: 1, cause: "unknown request id", status: killed},
		{scenario: "lastwords", what: "an error with id 0 (the opener's last words) while it stays up", cause: "the opener reported", status: killed},
		{scenario: "ctrunc", what: "opened whose header says 1 descriptor, 253 attached", cause: "descriptors", status: killed},
		{scenario: "zerolen", what: "a zero-length message", cause: "zero-length", status: killed},
		{scenario: "huge", what: "a 100000-byte message (MSG_TRUNC)", cause: "MSG_TRUNC", status: killed},
		{scenario: "badversion", what: "a reply whose header says version 2", cause: "version", status: killed},
		{scenario: "dirlistopen", what: "an open answered by a dir-list", cause: "not a readdir", status: killed},
		{scenario: "dirlistfd", what: "a dir-list with a descriptor attached", readdir: true, cause: "descriptors", status: killed},
		{scenario: "dirlistbad", what: "a dir-list that says more but carries no entry", readdir: true, cause: "malformed", status: killed},
		{scenario: "openeddir", what: "a readdir answered by opened with a descriptor", readdir: true, cause: "opened reply", status: killed},
		{scenario: "exit-0", what: "exits 0 with a request in flight", cause: "exited before Close", status: "exit 0"},
		{scenario: "exit-1", what: "exits 1 with a request in flight", status: "exit 1"},
		{scenario: "sigkill", what: "kills itself with SIGKILL with a request in flight", status: killed},
		{scenario: "sigsegv", what: "dies of SIGSEGV with a request in flight", status: "signal segmentation fault"},
	} {
		t.Run(tc.scenario, func(t *testing.T) { runFakeCase(t, fc, tc) })
	}
	t.Run("exit-0-idle", func(t *testing.T) { fakeIdleExit(t, fc) })
	t.Run("stderrhold", func(t *testing.T) { fakeStderrHold(t, fc) })
	t.Run("sockhold", func(t *testing.T) { fakeSockHold(t, fc) })
	t.Run("logs", func(t *testing.T) { fakeLogs(t, fc) })
	t.Run("ignoreeof", func(t *testing.T) { fakeIgnoreEOF(t, fc) })
	for _, tc := range []struct{ scenario, what, want string }{
		{"wrongpid", "ready with a pid that is not the opener's", "ready says pid"},
		{"badready", "ready with version 2", "unsupported protocol version"},
	} {
		t.Run(tc.scenario, func(t *testing.T) { fakeBadReady(t, fc, tc.scenario, tc.what, tc.want) })
	}
}

func runFakeCase(t *testing.T, fc *hostile.FakeChildren, tc fakeCase) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o := startFake(t, ctx, fc, tc.scenario, parent.Config{})
	pid := o.PID()
	call := func() error {
		if tc.readdir {
			_, err := o.ReadDir(ctx, "/etc/hostname")
			return err
		}
		if tc.batch {
			res, err := o.OpenBatch(ctx, []parent.Request{{Path: "/etc/hostname"}, {Path: "/etc/hostname"}})
			for _, r := range res {
				if r.File != nil {
					r.File.Close()
				}
			}
			return err
		}
		f, err := o.Open(ctx, "/etc/hostname", os.O_RDONLY, 0)
		if f != nil {
			f.Close()
		}
		return err
	}
	var fail []string
	for i := 0; i < tc.okFirst; i++ {
		if err := call(); err != nil {
			fail = append(fail, fmt.Sprintf("call %d before the fault: %v", i+1, err))
		}
	}
	begin := time.Now()
	callErr := call()
	took := time.Since(begin)
	var doneAfter time.Duration
	select {
	case <-o.Done():
		doneAfter = time.Since(begin)
	case <-time.After(10 * time.Second):
		fail = append(fail, "Done not closed 10s after the fault")
	}
	laterErr := call()
	closeErr := o.Close()
	fds1 := settleSelfFDs(t, fds0)
	g1 := settleGoroutines(g0)
	gone := unix.Kill(pid, 0) == unix.ESRCH

	var ee *parent.ExitError
	switch {
	case callErr == nil:
		fail = append(fail, "the call succeeded")
	case !errors.As(callErr, &ee):
		fail = append(fail, fmt.Sprintf("call error %v (%T) is not an *ExitError", callErr, callErr))
	case status(ee.ProcessState) != tc.status:
		fail = append(fail, fmt.Sprintf("call error status %s, want %s", status(ee.ProcessState), tc.status))
	}
	if tc.cause != "" && (callErr == nil || !strings.Contains(callErr.Error(), tc.cause)) {
		fail = append(fail, fmt.Sprintf("call error %q does not say %q", callErr, tc.cause))
	}
	if !errors.As(laterErr, &ee) {
		fail = append(fail, fmt.Sprintf("a later call: %v, want the *ExitError", laterErr))
	}
	if !errors.As(closeErr, &ee) || status(ee.ProcessState) != tc.status {
		fail = append(fail, fmt.Sprintf("Close: %v (%s), want an *ExitError with %s", closeErr, exitStatus(closeErr), tc.status))
	}
	if fds1 != fds0 {
		fail = append(fail, fmt.Sprintf("descriptors: %d before, %d after: %s", fds0, fds1, testutil.FDList(0)))
	}
	if g1 > g0 {
		fail = append(fail, fmt.Sprintf("goroutines: %d before, %d after", g0, g1))
	}
	if !gone {
		fail = append(fail, fmt.Sprintf("the fake opener %d was not reaped", pid))
	}
	section := secFakeProtocol
	want := "the call fails with *ExitError naming the violation; the parent kills the opener; Close reports it; no descriptor or goroutine kept"
	if tc.status != killed || tc.scenario == "sigkill" {
		section = secFakeDeath
		want = fmt.Sprintf("the call fails with *ExitError (%s); Done closes; Close reports it; no descriptor or goroutine kept", tc.status)
	}
	hostile.Row(t, section, tc.what, want,
		fmt.Sprintf("call error after %v: %q; Done after %v; Close: %s; fds %d→%d; goroutines %d→%d",
			took.Round(time.Millisecond), short(errText(callErr), 160), doneAfter.Round(time.Millisecond), exitStatus(closeErr), fds0, fds1, g0, g1))
	reportFails(t, fail)
}

// fakeIdleExit: the opener exits 0 on its own, with no call in flight.
func fakeIdleExit(t *testing.T, fc *hostile.FakeChildren) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	o := startFake(t, context.Background(), fc, "exit-0-idle", parent.Config{})
	begin := time.Now()
	var fail []string
	var doneAfter time.Duration
	select {
	case <-o.Done():
		doneAfter = time.Since(begin)
	case <-time.After(10 * time.Second):
		fail = append(fail, "Done not closed 10s after the opener exited")
	}
	errNow := o.Err()
	_, callErr := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	closeErr := o.Close()
	fds1, g1 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	var ee *parent.ExitError
	if !errors.As(errNow, &ee) || ee.ExitCode() != 0 || !strings.Contains(errNow.Error(), "before Close") {
		fail = append(fail, fmt.Sprintf("Err: %v, want an *ExitError with status 0 that says it exited before Close", errNow))
	}
	if !errors.As(callErr, &ee) || !errors.As(closeErr, &ee) {
		fail = append(fail, fmt.Sprintf("Open: %v; Close: %v; want the *ExitError", callErr, closeErr))
	}
	noneKept(t, fds0, fds1, g0, g1)
	hostile.Row(t, secFakeDeath, "exits 0 right after ready, no call in flight",
		"Done closes at once; Err, later calls and Close return *ExitError (status 0, exited before Close)",
		fmt.Sprintf("Done after %v; Err: %q; Close: %s; fds %d→%d; goroutines %d→%d", doneAfter.Round(time.Millisecond), errText(errNow), exitStatus(closeErr), fds0, fds1, g0, g1))
	reportFails(t, fail)
}

// fakeStderrHold: the opener dies leaving a grandchild that holds its
// stderr, so the parent's log reader never sees end of file while the
// grandchild lives.
func fakeStderrHold(t *testing.T, fc *hostile.FakeChildren) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	o, pid := startFakeGroup(t, fc, "stderrhold")
	begin := time.Now()
	_, callErr := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	callTook := time.Since(begin)
	begin = time.Now()
	closeErr := o.Close()
	closeTook := time.Since(begin)
	fds1 := testutil.FDs(t, 0) // right after Close
	g1 := runtime.NumGoroutine()
	// The log reader may take a moment past Close to give up; it must not
	// wait for the grandchild (10s).
	settle := time.Now()
	fdsSettled := settleSelfFDs(t, fds0)
	gSettled := settleGoroutines(g0)
	settleTook := time.Since(settle)
	var fail []string
	var ee *parent.ExitError
	if !errors.As(callErr, &ee) || ee.ExitCode() != 1 || !errors.As(closeErr, &ee) {
		fail = append(fail, fmt.Sprintf("Open: %v; Close: %v; want *ExitError with status 1", callErr, closeErr))
	}
	if callTook > time.Second || closeTook > time.Second {
		fail = append(fail, fmt.Sprintf("the call took %v, Close %v", callTook, closeTook))
	}
	if fdsSettled != fds0 || gSettled > g0 || settleTook > time.Second {
		fail = append(fail, fmt.Sprintf("BUG: after Close returned, the parent held %d descriptor(s) and %d goroutine(s) more than before Start for %v: the opener's stderr pipe and its log forwarder, which read until every holder of the pipe's other end (here a grandchild of the opener) exits", fdsSettled-fds0, gSettled-g0, settleTook.Round(time.Millisecond)))
	}
	unix.Kill(-pid, unix.SIGKILL)
	fds2, g2 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	hostile.Row(t, secFakeDeath, "exits 1 leaving a grandchild that holds its stderr",
		"the call and Close return *ExitError (status 1) promptly; at once after Close (within a second) nothing of the opener is left in the parent",
		fmt.Sprintf("call error after %v; Close: %s after %v; right after Close fds %d→%d, goroutines %d→%d; %v later fds %d, goroutines %d (the grandchild still alive); once it is killed fds %d, goroutines %d",
			callTook.Round(time.Millisecond), exitStatus(closeErr), closeTook.Round(time.Millisecond), fds0, fds1, g0, g1,
			settleTook.Round(time.Millisecond), fdsSettled, gSettled, fds2, g2))
	reportFails(t, fail)
}

// fakeSockHold: the opener dies with a call in flight, leaving a grandchild
// that holds its end of the socket, so the parent never reads end of stream
// while the grandchild lives. The parent still sees the exit (it waits for
// the process), and the call must fail promptly. The grandchild is killed
// after 2s so that the test ends either way.
func fakeSockHold(t *testing.T, fc *hostile.FakeChildren) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	o, pid := startFakeGroup(t, fc, "sockhold")
	const rescue = 2 * time.Second
	timer := time.AfterFunc(rescue, func() { unix.Kill(-pid, unix.SIGKILL) })
	defer timer.Stop()
	begin := time.Now()
	doneAt := make(chan time.Duration, 1)
	go func() {
		select {
		case <-o.Done():
			doneAt <- time.Since(begin)
		case <-time.After(10 * time.Second):
			doneAt <- -1
		}
	}()
	_, callErr := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	callTook := time.Since(begin)
	doneAfter := <-doneAt
	closeErr := o.Close()
	unix.Kill(-pid, unix.SIGKILL)
	fds1, g1 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	hostile.Row(t, secFakeDeath, "exits 1 with a call in flight, leaving a grandchild that holds its end of the socket (killed after 2s)",
		"the call fails with *ExitError (status 1) as soon as the opener has exited (Done), not when the socket's last holder goes",
		fmt.Sprintf("call error after %v: %q; Done after %v; Close: %s; fds %d→%d; goroutines %d→%d",
			callTook.Round(time.Millisecond), short(errText(callErr), 120), doneAfter.Round(time.Millisecond), exitStatus(closeErr), fds0, fds1, g0, g1))
	var ee *parent.ExitError
	if !errors.As(callErr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("Open: %v; want *ExitError with status 1", callErr)
	}
	if callTook > time.Second {
		t.Errorf("BUG: the pending call returned %v after it was made, %v after Done was closed: the caller holding the reading role stayed blocked in recvmsg after the opener was known dead, until the grandchild holding the socket was killed", callTook, callTook-doneAfter)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// fakeIgnoreEOF: an opener that does not exit at end of stream. Close
// waits for it, then kills it, and reports that.
func fakeIgnoreEOF(t *testing.T, fc *hostile.FakeChildren) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	// A short CloseTimeout keeps the test quick; the default is 5s.
	o := startFake(t, context.Background(), fc, "ignoreeof", parent.Config{CloseTimeout: 300 * time.Millisecond})
	f, openErr := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
	if f != nil {
		f.Close()
	}
	begin := time.Now()
	closeErr := o.Close()
	took := time.Since(begin)
	fds1, g1 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	hostile.Row(t, secFakeDeath, "does not exit at end of stream (Close)",
		"Close waits its timeout (Config.CloseTimeout), kills the opener and returns *ExitError saying so; nothing kept",
		fmt.Sprintf("Open before: %v; Close after %v: %q; fds %d→%d; goroutines %d→%d",
			errText(openErr), took.Round(time.Millisecond), short(errText(closeErr), 160), fds0, fds1, g0, g1))
	var ee *parent.ExitError
	if openErr != nil {
		t.Errorf("Open: %v", openErr)
	}
	if !errors.As(closeErr, &ee) || status(ee.ProcessState) != killed || !strings.Contains(closeErr.Error(), "did not exit") {
		t.Errorf("Close: %v, want an *ExitError for a kill that says the opener did not exit within 300ms", closeErr)
	}
	if took > 10*time.Second {
		t.Errorf("Close took %v", took)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// fakeLogs: non-JSON lines, JSON with the wrong types, a 10 MB line, bytes
// that are not UTF-8, on the opener's stderr.
func fakeLogs(t *testing.T, fc *hostile.FakeChildren) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	var buf testutil.LogBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &buf})
	o := startFake(t, context.Background(), fc, "logs", parent.Config{Logger: log})
	var fail []string
	opened := 0
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "fake opener last words") && time.Now().Before(deadline) {
		f, err := o.Open(context.Background(), "/etc/hostname", os.O_RDONLY, 0)
		if err != nil {
			fail = append(fail, fmt.Sprintf("Open while the opener writes garbage logs: %v", err))
			break
		}
		f.Close()
		opened++
		time.Sleep(10 * time.Millisecond)
	}
	closeErr := o.Close()
	fds1, g1 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	out := buf.String()
	longest := 0
	for _, l := range strings.Split(out, "\n") {
		longest = max(longest, len(l))
	}
	var ee *parent.ExitError
	if !errors.As(closeErr, &ee) || ee.ExitCode() != 1 {
		fail = append(fail, fmt.Sprintf("Close: %v, want *ExitError with status 1", closeErr))
	} else {
		if len(ee.Log) == 0 || len(ee.Log) > 10 || !strings.Contains(ee.Log[len(ee.Log)-1], "fake opener last words") {
			fail = append(fail, fmt.Sprintf("ExitError.Log: %d lines, last %q", len(ee.Log), ee.Log))
		}
		for _, l := range ee.Log {
			if len(l) > 600 {
				fail = append(fail, fmt.Sprintf("ExitError.Log line of %d bytes", len(l)))
			}
		}
	}
	for _, want := range []string{"this is not JSON at all", "fake opener last words", "map[]", "a JSON string"} {
		if !strings.Contains(out, want) {
			fail = append(fail, fmt.Sprintf("the parent's log lacks %q", want))
		}
	}
	if len(out) > 1<<20 || longest > 128<<10 {
		fail = append(fail, fmt.Sprintf("the parent re-emitted %d bytes, longest line %d: a 10 MB line was not capped", len(out), longest))
	}
	noneKept(t, fds0, fds1, g0, g1)
	tail := 0
	if ee != nil {
		tail = len(ee.Log)
	}
	hostile.Row(t, secFakeLogs, "not JSON; \"@level\": 5; \"@message\": {} or null or 12.5; a JSON array, null, a string; a 10 MB line; 100000 '['; bytes that are not UTF-8",
		"no panic; every line re-emitted (non-JSON as text at info), a line capped at 64 KiB; calls keep working; ExitError.Log keeps the last warnings, each at most 512 bytes",
		fmt.Sprintf("%d opens served meanwhile; %d bytes re-emitted, longest line %d bytes; Close: %s with %d log lines; fds %d→%d; goroutines %d→%d",
			opened, len(out), longest, exitStatus(closeErr), tail, fds0, fds1, g0, g1))
	reportFails(t, fail)
}

// fakeBadReady: the handshake fails; Start returns an error and leaves
// nothing behind.
func fakeBadReady(t *testing.T, fc *hostile.FakeChildren, scenario, what, want string) {
	fds0, g0 := testutil.FDs(t, 0), runtime.NumGoroutine()
	begin := time.Now()
	o, err := parent.Start(context.Background(), parent.Config{Executable: fc.Path(t, scenario), Rules: []string{"/etc/hostname"}})
	took := time.Since(begin)
	if o != nil {
		o.Close()
	}
	fds1, g1 := settleSelfFDs(t, fds0), settleGoroutines(g0)
	var ee *parent.ExitError
	hostile.Row(t, secFakeDeath, what, "Start fails with an *ExitError that says what was wrong; the opener is killed and reaped; nothing kept",
		fmt.Sprintf("Start error after %v: %q; fds %d→%d; goroutines %d→%d", took.Round(time.Millisecond), short(errText(err), 200), fds0, fds1, g0, g1))
	if err == nil || !errors.As(err, &ee) || !strings.Contains(err.Error(), want) {
		t.Errorf("Start: %v, want an *ExitError that says %q", err, want)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// TestFaultOpenerAtFDLimit lowers the real opener's RLIMIT_NOFILE to what
// it holds (prlimit(2)): opens fail with EMFILE, reported as a system error
// (an *fs.PathError, not a denial), and it serves again once the limit is
// raised.
func TestFaultOpenerAtFDLimit(t *testing.T) {
	root, _ := tree(t)
	o := start(t, parent.Config{Rules: []string{root + "/"}})
	pid := o.PID()
	path := root + "/a.txt"
	if _, err := read(t, o, path); err != nil {
		t.Fatal(err)
	}
	before, err := testutil.SettledFDs(pid, -1)
	testutil.Must(t, err)
	var old unix.Rlimit
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old))
	free, err := hostile.LowestFreeFD(pid)
	testutil.Must(t, err)
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(free), Max: old.Max}, nil))
	_, openErr := read(t, o, path)
	res, batchErr := o.OpenBatch(context.Background(), []parent.Request{{Path: path}, {Path: path}})
	var itemErr error
	if batchErr == nil && len(res) == 2 {
		itemErr = res[0].Err
		for _, r := range res {
			if r.File != nil {
				r.File.Close()
			}
		}
	}
	testutil.Must(t, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil))
	got, afterErr := read(t, o, path)
	after, err := testutil.SettledFDs(pid, before)
	testutil.Must(t, err)
	var pe *fs.PathError
	hostile.Row(t, secExhaustion, fmt.Sprintf("opener at its RLIMIT_NOFILE (prlimit soft limit %d)", free),
		"Open and each batch item fail with *fs.PathError matching syscall.EMFILE (a system error, not ErrDenied); after raising the limit the opener serves; its fds unchanged",
		fmt.Sprintf("Open: %q; batch item: %q; after raising: %q, %v; opener fds %d→%d", errText(openErr), errText(itemErr), got, afterErr, before, after))
	if !errors.As(openErr, &pe) || !errors.Is(openErr, syscall.EMFILE) || errors.Is(openErr, parent.ErrDenied) {
		t.Errorf("Open at the opener's limit: %v, want *fs.PathError with EMFILE", openErr)
	}
	if batchErr != nil || !errors.Is(itemErr, syscall.EMFILE) {
		t.Errorf("batch at the opener's limit: %v / item %v, want each item EMFILE", batchErr, itemErr)
	}
	if afterErr != nil || got != "alpha" {
		t.Errorf("after raising the limit: %q, %v", got, afterErr)
	}
	if after != before {
		t.Errorf("opener descriptors %d→%d", before, after)
	}
}

// emfileReport is what the parent-emfile role found, as JSON on stdout.
type emfileReport struct {
	Limit                 int      // the soft limit set: the lowest free descriptor
	OpenErr               string   // Open at the limit
	OpenEMFILE, OpenIsPE  bool     // matches syscall.EMFILE; is an *fs.PathError
	BatchErr              string   // a 253-item batch with room for 10 descriptors
	BatchEMFILE           bool     //
	Arrived               int      // descriptors the kernel installed for that batch (room)
	Concurrent            string   // 16 goroutines with room for 3 descriptors
	ConcurrentOK          bool     // every result a success or EMFILE, none hung
	AfterOpen, AfterBatch string   // after raising the limit
	FDsBefore, FDsAfter   int      // this process's descriptors
	FDsAtLimit            int      // after the failed calls, before raising
	CloseErr              string   //
	Fake                  []string // the ctrunc fake opener: at the limit, after raising
	FakeFDsBefore         int      // before either opener started
	FakeFDsAfter          int      // after both were closed
}

// TestFaultParentAtFDLimit runs the parent-emfile role: this process's
// RLIMIT_NOFILE lowered to the descriptors it holds, a call whose reply
// carries descriptors fails with a clear error matching syscall.EMFILE,
// everything that did arrive is closed, and the next call after raising the
// limit works.
func TestFaultParentAtFDLimit(t *testing.T) {
	root, _ := tree(t)
	fc := hostile.BuildFakeChild(t)
	out := runFaultRole(t, "parent-emfile", faultDirEnv+"="+root, hostile.FakeChildEnv+"="+fc.Binary())
	var r emfileReport
	line := roleLine(out, "EMFILE-REPORT ")
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("role output: %v\n%s", err, out)
	}
	hostile.Row(t, secExhaustion, fmt.Sprintf("parent at its RLIMIT_NOFILE (soft limit %d, in a subprocess): Open", r.Limit),
		"fails with a clear error matching syscall.EMFILE (an *fs.PathError, as Open documents); the connection goes on",
		fmt.Sprintf("%q (EMFILE: %v, *fs.PathError: %v)", r.OpenErr, r.OpenEMFILE, r.OpenIsPE))
	hostile.Row(t, secExhaustion, "parent with room for 10 descriptors: a batch of 253 (MSG_CTRUNC)",
		"fails with EMFILE; the descriptors that did arrive are closed",
		fmt.Sprintf("%q (EMFILE: %v); fds at the limit %d, before %d", r.BatchErr, r.BatchEMFILE, r.FDsAtLimit, r.FDsBefore))
	hostile.Row(t, secExhaustion, "parent with room for 3 descriptors: 16 goroutines × 20 opens (coalesced into batches)",
		"each call succeeds or fails with EMFILE as an *fs.PathError; none hangs; nothing leaked",
		r.Concurrent)
	hostile.Row(t, secExhaustion, "parent: limit raised again",
		"Open and a 253-item batch work; no descriptor leaked; Close returns nil",
		fmt.Sprintf("Open: %s; batch: %s; fds %d→%d; Close: %s", r.AfterOpen, r.AfterBatch, r.FDsBefore, r.FDsAfter, r.CloseErr))
	hostile.Row(t, secExhaustion, "fake opener sends 253 descriptors on an opened (header says 1) to a parent at its limit",
		"MSG_CTRUNC wins: that call fails with EMFILE and the connection goes on; with the limit raised the same reply is a count mismatch, fatal; nothing leaked",
		fmt.Sprintf("%s; fds %d before either opener started, %d after both closed", strings.Join(r.Fake, "; "), r.FakeFDsBefore, r.FakeFDsAfter))
	if !r.OpenEMFILE {
		t.Errorf("Open at the limit: %q does not match EMFILE", r.OpenErr)
	}
	if !r.OpenIsPE {
		t.Errorf("BUG: Open at the parent's descriptor limit returned %q, which is not an *fs.PathError (Open documents that its errors are, a dead opener's *ExitError apart)", r.OpenErr)
	}
	if !r.ConcurrentOK {
		t.Errorf("16 goroutines at the limit: %s", r.Concurrent)
	}
	if !r.BatchEMFILE {
		t.Errorf("batch at the limit: %q does not match EMFILE", r.BatchErr)
	}
	if r.FDsAtLimit != r.FDsBefore || r.FDsAfter != r.FDsBefore {
		t.Errorf("descriptors: %d before, %d at the limit, %d after", r.FDsBefore, r.FDsAtLimit, r.FDsAfter)
	}
	if r.AfterOpen != "ok" || r.AfterBatch != "ok" || r.CloseErr != "<nil>" {
		t.Errorf("after raising the limit: Open %s, batch %s, Close %s", r.AfterOpen, r.AfterBatch, r.CloseErr)
	}
	if len(r.Fake) != 2 || !strings.Contains(r.Fake[0], "EMFILE") || !strings.Contains(r.Fake[1], "ExitError") {
		t.Errorf("ctrunc fake: %q", r.Fake)
	}
	if r.FakeFDsAfter != r.FakeFDsBefore {
		t.Errorf("ctrunc fake: descriptors %d→%d", r.FakeFDsBefore, r.FakeFDsAfter)
	}
}

// roleParentEMFILE is the parent-emfile role.
func roleParentEMFILE(t *testing.T) {
	root := os.Getenv(faultDirEnv)
	path := root + "/a.txt"
	base := testutil.FDs(t, 0) // before both openers
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, err)
	fake, err := parent.Start(context.Background(), parent.Config{
		Executable: hostile.FakeChildAt(os.Getenv(hostile.FakeChildEnv)).Path(t, "ctrunc"), Rules: []string{root + "/"}})
	testutil.Must(t, err)
	batch := make([]parent.Request, protocol.MaxBatch)
	for i := range batch {
		batch[i].Path = path
	}
	openOnce := func(o *parent.Opener) error {
		f, err := o.Open(context.Background(), path, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
		}
		return err
	}
	batchOnce := func() error {
		res, err := o.OpenBatch(context.Background(), batch)
		for _, r := range res {
			if r.File != nil {
				r.File.Close()
			} else if err == nil {
				err = r.Err
			}
		}
		return err
	}
	// Warm up, so that everything lazily opened is open.
	testutil.Must(t, openOnce(o))
	testutil.Must(t, batchOnce())
	var r emfileReport
	r.FDsBefore = testutil.FDs(t, 0)
	var old unix.Rlimit
	testutil.Must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	free, err := hostile.LowestFreeFD(0)
	testutil.Must(t, err)
	r.Limit = free
	setLimit := func(cur uint64) {
		testutil.Must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: cur, Max: old.Max}))
	}

	setLimit(uint64(free))
	err = openOnce(o)
	var pe *fs.PathError
	r.OpenErr, r.OpenEMFILE, r.OpenIsPE = errText(err), errors.Is(err, syscall.EMFILE), errors.As(err, &pe)
	setLimit(uint64(free + 10))
	err = batchOnce()
	r.BatchErr, r.BatchEMFILE = errText(err), errors.Is(err, syscall.EMFILE)
	r.FDsAtLimit = testutil.FDs(t, 0)
	// Many callers at once (their opens coalesce into batches) with room
	// for 3 descriptors: each call succeeds or fails with EMFILE.
	setLimit(uint64(free + 3))
	var mu sync.Mutex
	okN, emfileN, otherN := 0, 0, 0
	var other string
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				f, err := o.Open(ctx, path, os.O_RDONLY, 0)
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					okN++
				case errors.Is(err, syscall.EMFILE) && errors.As(err, new(*fs.PathError)):
					emfileN++
				default:
					otherN++
					other = err.Error()
				}
				mu.Unlock()
				if f != nil {
					f.Close()
				}
			}
		}()
	}
	wg.Wait()
	r.Concurrent = fmt.Sprintf("%d ok, %d EMFILE (*fs.PathError), %d other %q; fds after %d", okN, emfileN, otherN, other, testutil.FDs(t, 0))
	r.ConcurrentOK = otherN == 0 && okN+emfileN == 320
	setLimit(old.Cur)
	r.AfterOpen, r.AfterBatch = "ok", "ok"
	if err := openOnce(o); err != nil {
		r.AfterOpen = err.Error()
	}
	if err := batchOnce(); err != nil {
		r.AfterBatch = err.Error()
	}
	r.FDsAfter = testutil.FDs(t, 0)
	r.CloseErr = errText(o.Close())

	// The fake: 253 descriptors on an opened reply.
	r.FakeFDsBefore = base
	free, err = hostile.LowestFreeFD(0)
	testutil.Must(t, err)
	setLimit(uint64(free + 10))
	err = openOnce(fake)
	r.Fake = append(r.Fake, fmt.Sprintf("at the limit: %q (EMFILE: %v)", errText(err), errors.Is(err, syscall.EMFILE)))
	setLimit(old.Cur)
	err = openOnce(fake)
	var ee *parent.ExitError
	r.Fake = append(r.Fake, fmt.Sprintf("limit raised: %q (*ExitError: %v)", errText(err), errors.As(err, &ee)))
	fake.Close()
	r.FakeFDsAfter = settleSelfFDs(t, r.FakeFDsBefore)
	b, err := json.Marshal(r)
	testutil.Must(t, err)
	fmt.Printf("EMFILE-REPORT %s\n", b)
}

// runFaultRole runs this test binary again with only TestFaultHelper
// selected and role in the environment, and returns its output.
func runFaultRole(t *testing.T, role string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	testutil.Must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestFaultHelper$", "-test.count=1", "-test.timeout=55s")
	cmd.Env = append(append(os.Environ(), faultRoleEnv+"="+role), env...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("role %s: %v\n%s", role, err, out)
	}
	return string(out)
}

// roleLine returns the rest of the first line of out that starts with
// prefix.
func roleLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

// TestFaultHelper is not a test: it plays a role of fault_test.go in a
// re-executed test binary (runFaultRole), and does nothing otherwise.
func TestFaultHelper(t *testing.T) {
	switch role := os.Getenv(faultRoleEnv); role {
	case "":
		return
	case "parent-emfile":
		roleParentEMFILE(t)
	case "parent-for-kill":
		o, err := parent.Start(context.Background(), parent.Config{Rules: []string{"/etc/hostname"}})
		testutil.Must(t, err)
		fmt.Printf("OPENER %d\n", o.PID())
		time.Sleep(time.Minute) // until killed
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// TestFaultParentKilled kills a parent (a re-executed test binary that
// started an opener) with SIGKILL and measures how long the opener takes to
// notice end of stream and exit.
func TestFaultParentKilled(t *testing.T) {
	exe, err := os.Executable()
	testutil.Must(t, err)
	const rounds = 5
	var times []time.Duration
	for i := 0; i < rounds; i++ {
		cmd := exec.Command(exe, "-test.run=^TestFaultHelper$", "-test.count=1", "-test.timeout=90s")
		cmd.Env = append(os.Environ(), faultRoleEnv+"=parent-for-kill")
		stdout, err := cmd.StdoutPipe()
		testutil.Must(t, err)
		testutil.Must(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		pid := 0
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "OPENER "); ok {
				pid, _ = strconv.Atoi(s)
				break
			}
		}
		if pid == 0 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the helper did not report its opener's pid")
		}
		time.Sleep(20 * time.Millisecond)
		begin := time.Now()
		testutil.Must(t, cmd.Process.Kill())
		for !hostile.Exited(pid) && time.Since(begin) < 10*time.Second {
			time.Sleep(200 * time.Microsecond)
		}
		took := time.Since(begin)
		cmd.Wait()
		if !hostile.Exited(pid) {
			unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("the opener %d still runs 10s after its parent was killed", pid)
		}
		times = append(times, took)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	hostile.Row(t, secLifecycle, fmt.Sprintf("parent killed with SIGKILL (%d rounds)", rounds),
		"the opener sees end of stream and exits within 100 ms",
		fmt.Sprintf("opener gone after %v median, %v max (from kill(2) to the opener's /proc entry gone or a zombie)",
			times[len(times)/2].Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond)))
	bound := 2 * time.Second
	if hostile.Race {
		bound += time.Second // a race-detector binary sleeps 1s at exit
	}
	if max := times[len(times)-1]; max > bound {
		t.Errorf("the opener took %v to exit after its parent died", max)
	}
}

// TestFaultChildKilledLatency kills the opener with 100 calls in flight
// from 16 goroutines (stopped first, so that they are all pending, and
// busy, so that some are mid-flight) and measures how soon each returns.
// TestChildKilled checks the errors; this measures.
func TestFaultChildKilledLatency(t *testing.T) {
	for _, stopped := range []bool{true, false} {
		name := "busy"
		if stopped {
			name = "stopped"
		}
		t.Run(name, func(t *testing.T) {
			root, _ := tree(t)
			g0 := runtime.NumGoroutine()
			fds0 := testutil.FDs(t, 0)
			o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
			testutil.Must(t, err)
			pid := o.PID()
			if stopped {
				testutil.Must(t, hostile.Stop(pid, 5*time.Second))
			}
			const callers, calls = 16, 100
			var killedAt time.Time
			var mu sync.Mutex
			var lat []time.Duration
			var errs []error
			var wg sync.WaitGroup
			for g := 0; g < callers; g++ {
				n := calls / callers
				if g < calls%callers {
					n++
				}
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							f, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
							end := time.Now()
							if err == nil {
								f.Close()
								continue // busy: go on until the kill
							}
							mu.Lock()
							errs = append(errs, err)
							if !killedAt.IsZero() {
								lat = append(lat, end.Sub(killedAt))
							}
							mu.Unlock()
							return
						}
					}()
				}
			}
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			killedAt = time.Now()
			testutil.Must(t, unix.Kill(pid, unix.SIGKILL))
			mu.Unlock()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("calls still blocked 10s after the kill")
			}
			closeErr := o.Close()
			g1 := settleGoroutines(g0)
			fds1 := settleSelfFDs(t, fds0)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			bad := 0
			for _, err := range errs {
				var ee *parent.ExitError
				if !errors.As(err, &ee) || status(ee.ProcessState) != "signal killed" {
					bad++
				}
			}
			var maxLat, medLat time.Duration
			if len(lat) > 0 {
				maxLat, medLat = lat[len(lat)-1], lat[len(lat)/2]
			}
			hostile.Row(t, secLifecycle, fmt.Sprintf("opener SIGKILLed (%s) with %d calls in flight from %d goroutines", name, calls, callers),
				"every call returns *ExitError (signal killed) within 100 ms of the kill; no goroutine left",
				fmt.Sprintf("%d calls returned, %d not *ExitError(killed); latency median %v, max %v; Close: %s; goroutines %d→%d; fds %d→%d",
					len(errs), bad, medLat.Round(10*time.Microsecond), maxLat.Round(10*time.Microsecond), exitStatus(closeErr), g0, g1, fds0, fds1))
			if len(errs) != calls || bad > 0 {
				t.Errorf("%d calls returned, %d with the wrong error; first: %v", len(errs), bad, errs[0])
			}
			if maxLat > 2*time.Second {
				t.Errorf("slowest call returned %v after the kill", maxLat)
			}
			noneKept(t, fds0, fds1, g0, g1)
		})
	}
}

// TestFaultStoppedOpener stops the opener (SIGSTOP): calls with a deadline
// return context.DeadlineExceeded near their deadline, calls without one
// wait, and once the opener continues (SIGCONT) each waiting call gets its
// own file, and a goroutine that was making calls one after another goes on
// in order.
func TestFaultStoppedOpener(t *testing.T) {
	const n = 8
	o, readN := numberedOpener(t, 20)
	fds0 := testutil.FDs(t, 0)
	g0 := runtime.NumGoroutine()
	// A goroutine reading files 0..19 in order, stopped in the middle.
	seqDone := make(chan []string, 1)
	seqStarted := make(chan struct{})
	go func() {
		var got []string
		for i := 0; i < 20; i++ {
			if i == 1 {
				close(seqStarted)
			}
			s, err := readN(context.Background(), i)
			if err != nil {
				s = err.Error()
			}
			got = append(got, s)
		}
		seqDone <- got
	}()
	<-seqStarted
	testutil.Must(t, hostile.Stop(o.PID(), 5*time.Second))
	stoppedAt := time.Now()
	const deadline = 100 * time.Millisecond
	type result struct {
		i    int
		s    string
		err  error
		late time.Duration
	}
	waiting := make(chan result, n)
	timed := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := readN(context.Background(), i)
			waiting <- result{i: i, s: s, err: err}
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			dl, _ := ctx.Deadline()
			s, err := readN(ctx, n+i)
			timed <- result{i: n + i, s: s, err: err, late: time.Since(dl)}
		}()
	}
	var lates []time.Duration
	badDeadline := 0
	for i := 0; i < n; i++ {
		r := <-timed
		if !errors.Is(r.err, context.DeadlineExceeded) {
			badDeadline++
		}
		lates = append(lates, r.late)
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	early := len(waiting)
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGCONT))
	contAt := time.Now()
	wrong := 0
	for i := 0; i < n; i++ {
		r := <-waiting
		if r.err != nil || r.s != strconv.Itoa(r.i) {
			wrong++
			t.Errorf("waiting call for file %d: got %q, %v", r.i, r.s, r.err)
		}
	}
	waitedFor := time.Since(contAt)
	seq := <-seqDone
	inOrder := true
	for i, s := range seq {
		if s != strconv.Itoa(i) {
			inOrder = false
			t.Errorf("sequential reader, file %d: got %q", i, s)
		}
	}
	// One more round trip, so that the abandoned calls' replies have been
	// read and their descriptors closed.
	if _, err := readN(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	fds1 := settleSelfFDs(t, fds0)
	g1 := settleGoroutines(g0)
	hostile.Row(t, secLifecycle, fmt.Sprintf("opener SIGSTOPped: %d calls with a %v deadline, %d without, one goroutine reading 20 files in sequence", n, deadline, n),
		"deadline calls return context.DeadlineExceeded at their deadline; the others wait, then each gets its own file after SIGCONT; the sequence goes on in order; abandoned replies closed",
		fmt.Sprintf("%d/%d DeadlineExceeded, overshoot median %v max %v (stopped %v before); %d returned early; after SIGCONT %d/%d got their own file, all within %v; sequence in order: %v; fds %d→%d; goroutines %d→%d",
			n-badDeadline, n, lates[len(lates)/2].Round(10*time.Microsecond), lates[len(lates)-1].Round(10*time.Microsecond), contAt.Sub(stoppedAt).Round(time.Millisecond),
			early, n-wrong, n, waitedFor.Round(10*time.Microsecond), inOrder, fds0, fds1, g0, g1))
	if badDeadline > 0 {
		t.Errorf("%d deadline calls did not return DeadlineExceeded", badDeadline)
	}
	if lates[len(lates)-1] > time.Second {
		t.Errorf("a deadline call returned %v after its deadline", lates[len(lates)-1])
	}
	if early > 0 {
		t.Errorf("%d calls without a deadline returned while the opener was stopped", early)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// TestFaultCloseRaces measures Close with calls in flight, two Closes at
// once, and calls after Close. TestCloseLifecycle and
// TestCloseWithCallsInFlight check the results; this adds the timings.
func TestFaultCloseRaces(t *testing.T) {
	root, _ := tree(t)
	g0, fds0 := runtime.NumGoroutine(), testutil.FDs(t, 0)
	o, err := parent.Start(context.Background(), parent.Config{Rules: []string{root + "/"}})
	testutil.Must(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lastReturn time.Time
	ok, closed, other := 0, 0, 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case err == parent.ErrClosed:
					closed++
				default:
					other++
				}
				mu.Unlock()
				if err != nil {
					mu.Lock()
					if now := time.Now(); now.After(lastReturn) {
						lastReturn = now
					}
					mu.Unlock()
					return
				}
				f.Close()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	errs := make(chan error, 2)
	begin := time.Now()
	for i := 0; i < 2; i++ {
		go func() { errs <- o.Close() }()
	}
	e1, e2 := <-errs, <-errs
	closeTook := time.Since(begin)
	wg.Wait()
	callsTook := lastReturn.Sub(begin)
	b2 := time.Now()
	_, openErr := o.Open(context.Background(), root+"/a.txt", os.O_RDONLY, 0)
	_, batchErr := o.OpenBatch(context.Background(), []parent.Request{{Path: root + "/a.txt"}})
	third := o.Close()
	afterTook := time.Since(b2)
	g1, fds1 := settleGoroutines(g0), settleSelfFDs(t, fds0)
	oneNil := (e1 == nil) != (e2 == nil) && (e1 == parent.ErrClosed || e2 == parent.ErrClosed)
	hostile.Row(t, secLifecycle, "Close with 16 goroutines calling; a second Close at the same time; Open, OpenBatch and Close after Close",
		"one Close returns nil, the other ErrClosed; in-flight calls succeed or return ErrClosed; later calls return ErrClosed at once; nothing kept",
		fmt.Sprintf("Closes: %v, %v after %v; calls: %d ok, %d ErrClosed, %d other, the last returned %v after Close began; after Close: %v, %v, %v in %v; goroutines %d→%d; fds %d→%d",
			e1, e2, closeTook.Round(time.Microsecond), ok, closed, other, callsTook.Round(time.Microsecond), openErr, batchErr, third, afterTook.Round(time.Microsecond), g0, g1, fds0, fds1))
	if !oneNil {
		t.Errorf("two Closes: %v and %v, want nil and ErrClosed", e1, e2)
	}
	if other > 0 {
		t.Errorf("%d calls racing Close returned something other than success or ErrClosed", other)
	}
	if openErr != parent.ErrClosed || batchErr != parent.ErrClosed || third != parent.ErrClosed {
		t.Errorf("after Close: %v, %v, %v; want ErrClosed", openErr, batchErr, third)
	}
	noneKept(t, fds0, fds1, g0, g1)
}

// TestFaultCancelReader cancels, with a context that has no deadline, a
// caller that holds the reading role while the opener is stopped, so that
// its reply cannot come: the reader waits in the kernel, not in the
// runtime's poller, and must still return context.Canceled (within
// cancelPoll), hand the role on, and leave the connection in step. The
// reply that arrives once the opener runs again is closed by the next
// reader, and a caller with a context that cannot end (the blocking
// recvmsg) gets its own file.
func TestFaultCancelReader(t *testing.T) {
	o, open := numberedOpener(t, 2)
	fds0 := testutil.FDs(t, 0)
	testutil.Must(t, hostile.Stop(o.PID(), 5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := open(ctx, 0)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it send and take the reading role
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled reader returned %v, want context.Canceled", err)
	}
	testutil.Must(t, unix.Kill(o.PID(), unix.SIGCONT))
	for i := 0; i < 2; i++ {
		if s, err := open(context.Background(), i); err != nil || s != strconv.Itoa(i) {
			t.Fatalf("after the cancelled read, file %d: %q, %v", i, s, err)
		}
	}
	if fds := settleSelfFDs(t, fds0); fds != fds0 {
		t.Errorf("descriptors %d→%d: the abandoned reply's descriptor was not closed", fds0, fds)
	}
}
