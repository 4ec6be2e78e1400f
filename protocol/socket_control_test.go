//go:build linux

package protocol_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/protocol"
)

// TestRecvControlTruncatedSmallOOB forces MSG_CTRUNC with a control buffer
// too small for the descriptors: the ones that fit must be closed too.
func TestRecvControlTruncatedSmallOOB(t *testing.T) {
	for _, oobLen := range []int{0, unix.CmsgSpace(4 * 2), protocol.OOBSize - 8} {
		t.Run(fmt.Sprint(oobLen), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			sent := makeFDs(t, protocol.MaxFDs)
			mustSend(t, a, batchReplyOK(t, 77, protocol.MaxFDs), sent)
			buf, _, fds := buffers()
			oob := make([]byte, oobLen)
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrFDsDropped, syscall.EMFILE)
			// The message itself arrived whole: its header may be answered.
			if m.Type != protocol.TypeBatchReply || m.ID != 77 {
				t.Errorf("Recv: got header %+v, want batch-reply id 77", m.Header)
			}
			// And the stream is still in step.
			mustSend(t, a, protocol.AppendOpened(nil, 78), sent[:1])
			m, err = protocol.Recv(b, buf, make([]byte, protocol.OOBSize), fds, 0)
			if err != nil || m.ID != 78 || len(m.FDs) != 1 {
				t.Fatalf("Recv after MSG_CTRUNC: got %+v, %d fds, %v; want opened id 78 with 1 fd", m.Header, len(m.FDs), err)
			}
			closeFDs(m.FDs)
		})
	}
}

const (
	rlimitChildEnv    = "PRIVSEP_PROTOCOL_TEST_RLIMIT_CHILD"
	rlimitChildMarker = "rlimit child: all checks ran"
)

// TestRecvControlTruncatedRlimit makes the kernel drop descriptors because
// the receiver is at RLIMIT_NOFILE. The limit is per process, so the test
// runs in a copy of the test binary.
func TestRecvControlTruncatedRlimit(t *testing.T) {
	if os.Getenv(rlimitChildEnv) == "1" {
		rlimitChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecvControlTruncatedRlimit$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), rlimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(rlimitChildMarker)) {
		t.Fatalf("subprocess output lacks %q, so its checks did not run:\n%s", rlimitChildMarker, out)
	}
	t.Logf("subprocess:\n%s", out)
}

func rlimitChild(t *testing.T) {
	for _, room := range []int{0, 3} {
		t.Run(fmt.Sprintf("room %d", room), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			const n = 10
			sent := makeFDs(t, n)
			mustSend(t, a, batchReplyOK(t, 90, n), sent)
			buf, oob, fds := buffers()

			// The kernel installs a received descriptor at the lowest free
			// number below the soft limit: set the limit so that exactly
			// room numbers are free.
			limit, free := 0, 0
			for ; ; limit++ {
				if _, err := unix.FcntlInt(uintptr(limit), unix.F_GETFD, 0); err == unix.EBADF {
					if free == room {
						break
					}
					free++
				}
			}
			var old unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
			lowered := old
			lowered.Cur = uint64(limit)
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
				t.Fatalf("setrlimit: %v", err)
			}
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			if rerr := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); rerr != nil {
				t.Fatalf("restoring RLIMIT_NOFILE: %v", rerr)
			}
			t.Logf("room for %d of %d descriptors (limit %d): Recv error: %v", room, n, limit, err)
			checkRecvFailed(t, m, err, protocol.ErrFDsDropped, syscall.EMFILE)
			if m.Type != protocol.TypeBatchReply || m.ID != 90 {
				t.Errorf("Recv: got header %+v, want batch-reply id 90", m.Header)
			}
		})
	}
	if !t.Failed() {
		fmt.Println(rlimitChildMarker)
	}
}

// TestRecvExtraControlMessage enables SO_PASSCRED on the receiver, so that
// SCM_CREDENTIALS arrives beside (or instead of) SCM_RIGHTS: Recv must refuse
// the message and close the descriptors that came with it.
func TestRecvExtraControlMessage(t *testing.T) {
	creds := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	for _, n := range []int{0, 2, protocol.MaxFDs} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			noLeaks(t)
			a, b := pair(t)
			if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				t.Fatal(err)
			}
			sent := makeFDs(t, n)
			oobSend := creds
			if n > 0 {
				oobSend = append(append([]byte(nil), creds...), unix.UnixRights(sent...)...)
			}
			if err := hostile.SendRaw(a, batchReplyOK(t, 55, max(n, 1)), oobSend, 0); err != nil {
				t.Fatalf("sendmsg: %v", err)
			}
			buf, oob, fds := buffers()
			m, err := protocol.Recv(b, buf, oob, fds, 0)
			checkRecvFailed(t, m, err, protocol.ErrMalformed)
		})
	}
	t.Run("zero-length", func(t *testing.T) {
		noLeaks(t)
		a, b := pair(t)
		if err := unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
		if err := hostile.SendRaw(a, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		buf, oob, fds := buffers()
		m, err := protocol.Recv(b, buf, oob, fds, 0)
		checkRecvFailed(t, m, err, protocol.ErrMalformed)
	})
}
