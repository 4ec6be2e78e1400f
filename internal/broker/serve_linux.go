//go:build linux && (amd64 || arm64)

package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxInFlight bounds the calls Serve decides at once: it runs this many
// workers. A program has at most one pending call per thread; beyond
// this many the next waits for a worker, so a program with thousands of
// threads costs the supervisor a bounded number of goroutines and
// threads, not one each.
const maxInFlight = 8

// pidfdThread is PIDFD_THREAD (6.9): a pidfd for a thread that is not the
// thread-group leader. It has O_EXCL's value; x/sys does not name it.
const pidfdThread = unix.O_EXCL

const pathMax = unix.PathMax

// ErrorReporter is an optional interface of a Decider: Serve passes it
// the errors it met serving one call (the call itself then failed with
// EACCES or the errno the kernel gave), which Serve does not return
// because the loop goes on.
type ErrorReporter interface {
	BrokerError(err error)
}

// Serve answers the calls notified on notifyFD (a listener from
// InstallFilter, received from the program) until the program is gone,
// ctx is done, or the listener fails. It returns nil when the program has
// exited (the last thread using the filter is gone), ctx.Err() when
// cancelled, an error otherwise.
//
// Serve takes ownership of notifyFD and closes it before returning; from
// then on every pending and future notified call of the program fails
// with ENOSYS: the kernel's own answer when nobody listens. Serve never
// lets a call wait on a listener it has stopped reading.
//
// For each call Serve reads the path (and openat2's open_how) once from
// the program's memory, composes the absolute path, checks the
// notification is still live, asks d and replies. Malformed calls (an
// unreadable path, a path too long, a bad open_how) are failed with the
// errno the kernel would give, without asking d. The supervisor needs the
// right to read the program's memory and descriptors: ptrace access
// (CAP_SYS_PTRACE, or the same uid and Yama's ptrace_scope permitting).
func Serve(ctx context.Context, notifyFD int, d Decider) error {
	return serve(ctx, notifyFD, d, serveOpts{})
}

// serveOpts are the tests' knobs.
type serveOpts struct {
	// noPidfdThread takes directory descriptors the way a kernel before
	// 6.9 makes Serve take them from a thread that is not the leader.
	noPidfdThread bool
}

func serve(ctx context.Context, notifyFD int, d Decider, o serveOpts) error {
	defer unix.Close(notifyFD)
	proc, err := openProc()
	if err != nil {
		return err
	}
	defer unix.Close(proc)
	wake, release, err := wakeOnDone(ctx)
	if err != nil {
		return err
	}
	defer release()

	s := &server{listener: notifyFD, proc: proc, d: d, wake: wake, ctx: ctx, opts: o}
	// Leader and followers: each worker takes the receive lock, waits
	// for one call, releases the lock and answers the call itself, while
	// the next worker waits for the following one. Handing each call to
	// another goroutine instead costs a thread wake-up on the path of
	// every open (it tripled the brokered open's cost), and several
	// receivers without the lock could block in RECV for a call another
	// one took, past cancellation.
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work()
		}()
	}
	// The workers use the listener; it must outlive them.
	wg.Wait()
	return s.err
}

func (s *server) work() {
	for {
		s.recvMu.Lock()
		if s.done {
			s.recvMu.Unlock()
			return
		}
		n, err := s.next()
		if n == nil {
			s.done, s.err = true, err
			s.recvMu.Unlock()
			return
		}
		s.recvMu.Unlock()
		s.handle(n)
	}
}

// next waits for the next call. It returns nil and the error Serve
// returns when serving must end. Preconditions: s.recvMu held.
func (s *server) next() (*seccompNotif, error) {
	fds := []unix.PollFd{{Fd: int32(s.listener), Events: unix.POLLIN}, {Fd: int32(s.wake), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, fmt.Errorf("broker: polling the seccomp listener: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil, s.ctx.Err()
		}
		ev := fds[0].Revents
		if ev&unix.POLLIN == 0 {
			if ev&unix.POLLHUP != 0 {
				return nil, nil // no task uses the filter any more
			}
			return nil, fmt.Errorf("broker: seccomp listener: poll events %#x", ev)
		}
		// Only the lock holder receives, and poll said a call is
		// waiting, so RECV does not block: it returns the call, or
		// ENOENT when the caller went away in between.
		n := new(seccompNotif)
		if err := notifRecv(s.listener, n); err != nil {
			if err == unix.ENOENT || err == unix.EINTR {
				continue
			}
			return nil, fmt.Errorf("broker: receiving a seccomp notification: %w", err)
		}
		return n, nil
	}
}

// openProc pins procfs once, at start: the per-call lookups of a
// program's current directory and the names of descriptors are made
// beneath it, never from "/".
func openProc() (int, error) {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("broker: opening /proc: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("broker: /proc is not procfs")
	}
	return fd, nil
}

type server struct {
	listener int // owned by Serve
	proc     int // owned by Serve
	wake     int // owned by Serve; readable once ctx is done
	ctx      context.Context
	d        Decider
	opts     serveOpts

	recvMu sync.Mutex // one receiver at a time; guards done and err
	done   bool
	err    error
}

// errGone means the call is no longer waiting: its thread died or a
// signal interrupted it. There is nobody to answer.
var errGone = errors.New("call gone")

// callError fails a call with errno, and says why for the reporter.
type callError struct {
	errno syscall.Errno
	why   string
}

func (e *callError) Error() string { return e.why + ": " + e.errno.Error() }

func (s *server) report(err error) {
	if r, ok := s.d.(ErrorReporter); ok {
		r.BrokerError(err)
	}
}

func (s *server) handle(n *seccompNotif) {
	req, err := s.request(n)
	if err != nil {
		var ce *callError
		switch {
		case errors.Is(err, errGone):
		case errors.As(err, &ce):
			s.reply(n.ID, nil, Fail(ce.errno))
		default:
			s.report(err)
			s.reply(n.ID, nil, Fail(unix.EACCES))
		}
		return
	}
	s.reply(n.ID, req, s.d.Decide(req))
}

// reply answers the call id; it checks first that the call still waits,
// and closes the answer's descriptor whatever happens.
func (s *server) reply(id uint64, req *Request, a Answer) {
	if a.kind == answerPlace && a.fd >= 0 {
		defer unix.Close(a.fd)
	}
	if notifIDValid(s.listener, id) != nil {
		return
	}
	if a.kind == answerPlace {
		cloexec := req != nil && req.Flags&unix.O_CLOEXEC != 0
		_, err := notifAddfdSend(s.listener, id, a.fd, cloexec)
		if err == nil || err == unix.ENOENT {
			return
		}
		// The program could not take it (EMFILE past its RLIMIT_NOFILE;
		// EBADF for a Decider's bad descriptor): the call fails as its
		// own open would have.
		var e syscall.Errno
		if !errors.As(err, &e) {
			e = unix.EACCES
		}
		a = Fail(e)
	}
	resp := seccompNotifResp{ID: id, Error: -int32(unix.EACCES)}
	switch a.kind {
	case answerContinue:
		resp.Error, resp.Flags = 0, unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
	case answerFail:
		if a.errno != 0 {
			resp.Error = -int32(a.errno)
		}
	}
	if err := notifSend(s.listener, &resp); err != nil && err != unix.ENOENT {
		s.report(fmt.Errorf("broker: answering %s: %w", req.describe(), err))
	}
}

func (r *Request) describe() string {
	if r == nil {
		return "a call"
	}
	return fmt.Sprintf("%s(%q) of thread %d", r.Syscall, r.Raw, r.PID)
}

// request reads the call's arguments from the program, once.
func (s *server) request(n *seccompNotif) (*Request, error) {
	name, ok := callName(n.Data.Nr)
	if !ok {
		return nil, &callError{unix.ENOSYS, fmt.Sprintf("system call %d", n.Data.Nr)}
	}
	a := n.Data.Args
	r := &Request{Syscall: name, PID: int(n.PID)}
	dirfd := int32(unix.AT_FDCWD)
	var pathAddr uint64
	switch name {
	case SysOpen:
		pathAddr, r.Flags, r.Mode = a[0], int(int32(a[1])), uint32(a[2])&0o7777
	case SysCreat:
		pathAddr, r.Flags, r.Mode = a[0], unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, uint32(a[1])&0o7777
	case SysOpenat:
		dirfd, pathAddr, r.Flags, r.Mode = int32(a[0]), a[1], int(int32(a[2])), uint32(a[3])&0o7777
	case SysOpenat2:
		dirfd, pathAddr = int32(a[0]), a[1]
		how, err := readHow(r.PID, a[2], a[3])
		if err != nil {
			return nil, s.goneOr(n.ID, err)
		}
		r.Flags, r.Mode, r.Resolve = int(how.Flags), uint32(how.Mode), how.Resolve
	}
	raw, err := readPath(r.PID, pathAddr)
	if err != nil {
		return nil, s.goneOr(n.ID, err)
	}
	r.Raw = raw
	if raw == "" {
		return nil, s.goneOr(n.ID, &callError{unix.ENOENT, "empty path"})
	}
	if raw[0] == '/' {
		r.Path = raw
		// Nothing but memory was read: one validity check covers it.
		return r, s.goneOr(n.ID, nil)
	}
	dir, err := s.dirOf(n.ID, r.PID, dirfd)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	base, err := s.dirPath(dir)
	if err != nil {
		return nil, err
	}
	if base != "" {
		r.Path = strings.TrimSuffix(base, "/") + "/" + raw
	}
	return r, nil
}

// goneOr returns errGone when the call no longer waits, else err. It is
// what makes every read from the program trustworthy: while the call is
// live its thread exists, so its pid was not reused between the read and
// now, and what was read came from it.
func (s *server) goneOr(id uint64, err error) error {
	if notifIDValid(s.listener, id) != nil {
		return errGone
	}
	return err
}

// liveFD returns fd, which a system call made for call id returning err,
// if the call succeeded and the notified call is still live. Otherwise it
// closes fd if there is one and returns errGone, or err saying what fd was
// to be.
func (s *server) liveFD(id uint64, fd int, err error, what string) (int, error) {
	if err = s.goneOr(id, err); err == nil {
		return fd, nil
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	if errors.Is(err, errGone) {
		return -1, err
	}
	return -1, fmt.Errorf("broker: %s: %w", what, err)
}

// dirOf returns a descriptor of the directory a relative path of thread
// tid starts from: dirfd's file, taken from the program with
// pidfd_getfd, or for AT_FDCWD its current directory, which no descriptor
// holds, so procfs's cwd link is the only handle on it. Both are the
// objects themselves, not paths the program named.
func (s *server) dirOf(id uint64, tid int, dirfd int32) (int, error) {
	if dirfd == unix.AT_FDCWD {
		fd, err := unix.Openat(s.proc, strconv.Itoa(tid)+"/cwd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return s.liveFD(id, fd, err, "current directory of thread "+strconv.Itoa(tid))
	}
	if dirfd < 0 {
		return -1, s.goneOr(id, &callError{unix.EBADF, "dirfd"})
	}
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if s.opts.noPidfdThread && err == nil {
		unix.Close(pidfd)
		pidfd, err = -1, unix.EINVAL
	}
	if err == unix.EINVAL {
		// Before 6.9 only a thread-group leader has a pidfd; a thread
		// shares the leader's table unless it unshared it, which procfs
		// shows per thread.
		return s.dirByProc(id, tid, dirfd)
	}
	if pidfd, err = s.liveFD(id, pidfd, err, "pidfd of thread "+strconv.Itoa(tid)); err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, int(dirfd), 0)
	if err == unix.EBADF {
		return -1, s.goneOr(id, &callError{unix.EBADF, "dirfd"})
	}
	if err != nil {
		return -1, s.goneOr(id, fmt.Errorf("broker: descriptor %d of thread %d: %w", dirfd, tid, err))
	}
	return fd, nil
}

func (s *server) dirByProc(id uint64, tid int, dirfd int32) (int, error) {
	fd, err := unix.Openat(s.proc, strconv.Itoa(tid)+"/fd/"+strconv.Itoa(int(dirfd)), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err = s.goneOr(id, err); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		if errors.Is(err, errGone) {
			return -1, err
		}
		if errors.Is(err, unix.ENOENT) {
			return -1, &callError{unix.EBADF, "dirfd"}
		}
		return -1, fmt.Errorf("broker: descriptor %d of thread %d: %w", dirfd, tid, err)
	}
	return fd, nil
}

// dirPath names the directory dir as the supervisor's kernel does, or
// returns "" when it has no name the policy could judge: deleted, or
// outside the supervisor's root.
//
// The name is a path the supervisor computed, not one the program gave,
// but it is still only a name: the program can rename the directory
// right after. That is harmless. The composed path is judged by the
// policy and opened beneath the opener's pinned rule directories with its
// containment, exactly like an absolute path the program could have
// passed itself; a rename race can only make the program get another
// file the policy allows, never one it does not.
func (s *server) dirPath(dir int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return "", fmt.Errorf("broker: fstat of a program's directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", &callError{unix.ENOTDIR, "dirfd"}
	}
	if st.Nlink == 0 {
		return "", nil
	}
	buf := make([]byte, pathMax)
	n, err := unix.Readlinkat(s.proc, "self/fd/"+strconv.Itoa(dir), buf)
	if err != nil {
		return "", fmt.Errorf("broker: naming a program's directory: %w", err)
	}
	p := string(buf[:n])
	if !strings.HasPrefix(p, "/") || n == len(buf) {
		return "", nil
	}
	return p, nil
}
