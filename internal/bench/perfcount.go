//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Counting system calls and context switches.
//
// The system-call targets were counted with strace -f -c, which
// stops every thread at every call and so changes how often the Go
// runtime sleeps and spins. The kernel's perf events count without
// stopping anything: one counter per thread for the raw_syscalls:sys_enter
// tracepoint (every system call, whatever its number) and one for context
// switches, each with inherit set, so that a thread or process the counted
// one creates is counted too, and reading a counter sums what its
// inheritors counted. It needs tracefs for the tracepoint's id and the
// right to trace both processes (root, or the same user with
// perf_event_paranoid permitting); without them the counts are left out
// with the reason.

// Events is what a counter counted.
type Events struct {
	Syscalls uint64 `json:"syscalls"`
	Switches uint64 `json:"context_switches"`
}

// sub is e-b, per field.
func (e Events) sub(b Events) Events {
	return Events{Syscalls: e.Syscalls - b.Syscalls, Switches: e.Switches - b.Switches}
}

// PerOp is what one operation costs on average, for Events over n of them.
type PerOp struct {
	Syscalls float64 `json:"syscalls"`
	Switches float64 `json:"context_switches"`
}

func (e Events) per(n float64) PerOp {
	if n <= 0 {
		return PerOp{}
	}
	return PerOp{Syscalls: float64(e.Syscalls) / n, Switches: float64(e.Switches) / n}
}

// counter holds the perf event descriptors of a set of threads: two per
// thread, system calls then context switches.
type counter struct{ fds []int }

// syscallTracepoint returns the id of the raw_syscalls:sys_enter
// tracepoint, from tracefs wherever it is mounted.
func syscallTracepoint() (uint64, error) {
	var first error
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		b, err := os.ReadFile(dir + "/events/raw_syscalls/sys_enter/id")
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		id, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("the raw_syscalls:sys_enter tracepoint's id %q: %w", b, err)
		}
		return id, nil
	}
	return 0, fmt.Errorf("the raw_syscalls:sys_enter tracepoint (is tracefs mounted and readable?): %w", first)
}

// threads lists the thread ids of process pid.
func threads(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// countThreads starts counting on each thread of tids (a thread that has
// exited since it was listed is passed over).
func countThreads(tids []int) (*counter, error) {
	tp, err := syscallTracepoint()
	if err != nil {
		return nil, err
	}
	c := &counter{}
	for _, tid := range tids {
		sys, err := openEvent(unix.PERF_TYPE_TRACEPOINT, tp, tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("counting the system calls of thread %d: %w", tid, err)
		}
		sw, err := openEvent(unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CONTEXT_SWITCHES, tid)
		if err != nil {
			unix.Close(sys)
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			c.close()
			return nil, fmt.Errorf("counting the context switches of thread %d: %w", tid, err)
		}
		c.fds = append(c.fds, sys, sw)
	}
	if len(c.fds) == 0 {
		return nil, errors.New("no thread left to count")
	}
	return c, nil
}

// countProcs starts counting the system calls and context switches of
// every thread of the processes pids (0 is this one), and of the threads
// and processes they start from now on. Threads started between the
// listing and the counter of the thread that started them are missed:
// count a process in its steady state.
func countProcs(pids ...int) (*counter, error) {
	var tids []int
	for _, pid := range pids {
		if pid == 0 {
			pid = os.Getpid()
		}
		t, err := threads(pid)
		if err != nil {
			return nil, fmt.Errorf("the threads of process %d: %w", pid, err)
		}
		tids = append(tids, t...)
	}
	return countThreads(tids)
}

func openEvent(typ uint32, config uint64, tid int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   typ,
		Config: config,
		Bits:   unix.PerfBitInherit,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	return unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
}

// read returns what every thread counted so far, inheritors included.
func (c *counter) read() (Events, error) {
	var e Events
	var buf [8]byte
	for i, fd := range c.fds {
		n, err := unix.Read(fd, buf[:])
		if err != nil || n != len(buf) {
			return Events{}, fmt.Errorf("reading a perf counter: %d bytes, %v", n, err)
		}
		v := *(*uint64)(unsafe.Pointer(&buf[0]))
		if i%2 == 0 {
			e.Syscalls += v
		} else {
			e.Switches += v
		}
	}
	return e, nil
}

func (c *counter) close() {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
}

// around returns what c counted while do ran.
func (c *counter) around(do func() error) (Events, error) {
	before, err := c.read()
	if err != nil {
		return Events{}, err
	}
	if err := do(); err != nil {
		return Events{}, err
	}
	after, err := c.read()
	if err != nil {
		return Events{}, err
	}
	return after.sub(before), nil
}

// countOps counts what n calls of op cost in the processes pids (0 is
// this one), per call.
func countOps(pids []int, n int, op func() error) (PerOp, error) {
	c, err := countProcs(pids...)
	if err != nil {
		return PerOp{}, err
	}
	defer c.close()
	e, err := c.around(repeat(n, op))
	if err != nil {
		return PerOp{}, err
	}
	return e.per(float64(n)), nil
}

// repeat returns a function that calls op n times, up to its first error.
func repeat(n int, op func() error) func() error {
	return func() error {
		for range n {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	}
}

// countCommand runs cmd to completion and returns what it and every
// process it started counted. The counter sits on this goroutine's thread,
// locked to it, so that the fork inherits it; the thread's own calls
// between the counter's start and its reading (the fork, the wait) are
// counted too, and cancel out when two runs are compared.
func countCommand(cmd *exec.Cmd) (Events, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c, err := countThreads([]int{unix.Gettid()})
	if err != nil {
		return Events{}, err
	}
	defer c.close()
	return c.around(cmd.Run)
}
