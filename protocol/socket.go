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

// closeAll closes fds. When they are exactly the run lo, lo+1, ... hi,
// which is what a batch of opens in a quiet process gets (each open takes
// the lowest free number), one close_range(2) closes them all: a system
// call for the batch instead of one per descriptor. The check is strict
// (ascending and consecutive), so that the range holds nothing but the
// caller's own descriptors; anything else, or a kernel without
// close_range (before 5.9) or a filter that refuses it, closes them one by
// one.
func closeAll(fds []int) {
	if consecutive(fds) && unix.CloseRange(uint(fds[0]), uint(fds[len(fds)-1]), 0) == nil {
		return
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// consecutive reports whether fds is a run of two or more descriptors,
// each one more than the one before.
func consecutive(fds []int) bool {
	if len(fds) < 2 || fds[0] < 0 {
		return false
	}
	for i, fd := range fds[1:] {
		if fd != fds[i]+1 {
			return false
		}
	}
	return true
}

// Peek reports whether a message (or end of stream) is waiting on fd,
// without taking it and without waiting: it returns unix.EAGAIN (bare) when
// none is, nil when one is, and recvmsg's other errors as they are. buf
// (at least one byte) receives the start of the message. Descriptors the
// message carries stay in it, for the Recv that takes it.
func Peek(fd int, buf []byte) error {
	for {
		_, _, _, err := recvmsg(fd, buf, nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err != unix.EINTR {
			return err
		}
	}
}
