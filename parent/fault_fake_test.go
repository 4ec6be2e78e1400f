//go:build linux

package parent_test

// The fake-opener part of the fault suite (fault_test.go): a fake opener
// (internal/hostile/fakechild) that breaks the protocol, writes garbage
// logs or dies in every way. Every case checks that the parent returns a
// clear error, closes every descriptor that arrived, leaves no goroutine
// behind and reports the opener's status, and logs a row of the
// reliability table.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

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
