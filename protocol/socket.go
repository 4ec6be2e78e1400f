//go:build linux

package protocol

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// OOBSize is the size of the control buffer Recv needs to take the most
// descriptors one message may carry: unix.CmsgSpace(4 * MaxFDs), worked
// out here so that it is a constant (Linux aligns control messages to the
// pointer size; a test checks the two agree).
const OOBSize = (unix.SizeofCmsghdr+cmsgAlign-1)&^(cmsgAlign-1) + (4*MaxFDs+cmsgAlign-1)&^(cmsgAlign-1)

// cmsgAlign is the alignment of control messages on Linux.
const cmsgAlign = unix.SizeofPtr

// Socketpair returns the two ends of a connected AF_UNIX SOCK_SEQPACKET socket
// pair, both close-on-exec and blocking. The caller owns both descriptors.
func Socketpair() (a, b int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, os.NewSyscallError("socketpair", err)
	}
	return fds[0], fds[1], nil
}

// Send sends msg, one whole message as built by the Append functions, with
// fds attached as one SCM_RIGHTS control message. It adds MSG_NOSIGNAL to
// flags, so a closed peer yields EPIPE rather than SIGPIPE; pass
// unix.MSG_DONTWAIT to get EAGAIN instead of blocking when the peer's queue
// is full. The caller keeps ownership of fds: the kernel duplicates them into
// the message, and the caller closes its copies when it no longer needs them.
//
// EAGAIN is returned as the bare errno, unwrapped, so that polling callers
// can test for it without allocating.
func Send(fd int, msg []byte, fds []int, flags int) error {
	if len(msg) < HeaderSize || len(msg) > MaxMessage {
		return fmt.Errorf("protocol: refusing to send a message of %d bytes", len(msg))
	}
	if len(fds) > MaxFDs {
		return fmt.Errorf("protocol: refusing to send %d descriptors in one message (at most %d)", len(fds), MaxFDs)
	}
	for {
		n, err := sendmsg(fd, msg, fds, flags|unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return err
		case err != nil:
			return os.NewSyscallError("sendmsg", err)
		case n != len(msg):
			// SOCK_SEQPACKET sends all or nothing; anything else means the
			// descriptor is not the socket we think it is.
			return fmt.Errorf("protocol: sendmsg sent %d of %d bytes", n, len(msg))
		}
		return nil
	}
}

// Msg is one received message. Payload aliases the buffer passed to Recv.
// FDs are owned by the caller once Recv returns without error.
type Msg struct {
	Header
	Payload []byte
	FDs     []int
}

// ErrFDsDropped is matched by the error Recv returns when the kernel could not
// install every descriptor the peer attached (MSG_CTRUNC), which in practice
// means the receiver reached its descriptor limit. The error also matches
// syscall.EMFILE. The message itself arrived whole, so the stream is still in
// step and the returned header can be answered.
var ErrFDsDropped = errors.New("descriptors dropped in transit (MSG_CTRUNC)")

// Recv receives one message into buf, which should be MaxMessage bytes long,
// using oob (OOBSize bytes, from make so that it is aligned) for the control
// data. Received descriptors are appended to fds[:0] and returned in the
// message; they are close-on-exec.
//
// Errors, and what the returned Msg holds with each:
//   - io.EOF: the peer shut down or closed its end (ECONNRESET, which says
//     it closed without reading everything we sent, is EOF too). A
//     zero-length message while the peer is still connected is not EOF but
//     malformed.
//   - unix.EAGAIN (bare): only with unix.MSG_DONTWAIT in flags.
//   - An error matching ErrMalformed or ErrFDsDropped: the message arrived
//     but cannot be used. If m.Type is not zero the header was sound and
//     m.ID may be answered; otherwise nothing about the message can be
//     trusted.
//   - Any other error is from recvmsg(2) itself.
//
// On every error all descriptors that arrived have been closed and m.FDs is
// empty.
func Recv(fd int, buf, oob []byte, fds []int, flags int) (m Msg, err error) {
	var n, oobn, rflags int
	for {
		n, oobn, rflags, err = recvmsg(fd, buf, oob, flags|unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
	case unix.EAGAIN:
		return Msg{}, err
	case unix.ECONNRESET:
		// The peer closed its end with messages from us still unread.
		return Msg{}, io.EOF
	default:
		return Msg{}, os.NewSyscallError("recvmsg", err)
	}
	fds, ctlErr := parseRights(oob[:oobn], fds[:0])
	defer func() {
		// Every error path hands back nothing: close what arrived. (The
		// returns below replace m, so fds is the only record of them.)
		if err != nil {
			closeAll(fds)
			m.FDs = fds[:0]
			m.Payload = nil
		}
	}()
	m.FDs = fds
	if n == 0 && oobn == 0 {
		if peerGone(fd) {
			return Msg{}, io.EOF
		}
		return Msg{}, malformed("zero-length message")
	}
	if ctlErr != nil {
		return Msg{}, ctlErr
	}
	if rflags&unix.MSG_TRUNC != 0 {
		return Msg{}, malformed("message longer than %d bytes (MSG_TRUNC)", len(buf))
	}
	h, payload, err := ParseHeader(buf[:n])
	m.Header = h
	if err != nil {
		return m, err
	}
	if rflags&unix.MSG_CTRUNC != 0 {
		return m, fmt.Errorf("protocol: %s message %d: %w: %d of %d arrived: %w",
			h.Type, h.ID, ErrFDsDropped, len(fds), h.NFD, syscall.EMFILE)
	}
	if len(fds) != int(h.NFD) {
		return m, malformed("%s message %d declares %d descriptors, %d arrived", h.Type, h.ID, h.NFD, len(fds))
	}
	m.Payload = payload
	return m, nil
}

// peerGone reports whether the peer has shut down its sending side, which
// tells a real end of stream from a zero-length message.
func peerGone(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		// If poll itself fails, the descriptor is unusable: call it EOF.
		return err != nil || pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}
}

// CloseFDs closes every descriptor in fds, ignoring errors: it is for
// descriptors nobody else has seen yet.
func CloseFDs(fds []int) { closeAll(fds) }

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
