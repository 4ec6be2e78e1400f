//go:build linux

package child

import (
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// listenBacklog is the backlog passed to listen(2); the kernel caps it at
// net.core.somaxconn, as it does for Go's net.Listen.
const listenBacklog = 4096

// listen decides and carries out one listen request. On success it returns
// the socket, which the caller owns.
func (w *worker) listen(l protocol.Listen) (int, protocol.Status) {
	addr := string(l.Addr)
	r, err := w.s.rs.pol.CheckListen(l.Network, addr)
	if err != nil {
		ref := err.(*policy.Refusal)
		reason := protocol.ReasonDenied
		if ref.Kind == policy.BadRequest {
			reason = protocol.ReasonBadRequest
		}
		w.s.log.Warn("denied listen", "network", l.Network, "addr", printable(l.Addr), "reason", reason.String(), "why", ref.Why)
		return -1, protocol.Status{Errno: uint32(ref.Errno), Reason: reason}
	}
	var fd int
	var errno syscall.Errno
	var op string
	if r.Network == "unix" {
		fd, op, errno = listenUnix(r)
	} else {
		fd, op, errno = listenInet(r)
	}
	if errno != 0 {
		w.s.log.Warn("listen failed", "network", r.Network, "addr", r.Addr, "op", op, "errno", errno.Error())
		return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
	}
	w.s.log.Info("granted listen", "network", r.Network, "addr", r.Addr, "rule", r.String())
	return fd, protocol.Status{}
}

// listenInet makes a TCP listener or a bound UDP socket for r, with the
// options Go's net package would set: SO_REUSEADDR for TCP, and
// IPV6_V6ONLY exactly for tcp6 and udp6, so that "tcp" on an empty host is
// one dual-stack socket.
func listenInet(r policy.Rule) (int, string, syscall.Errno) {
	i := strings.LastIndexByte(r.Addr, ':')
	host, portStr := strings.Trim(r.Addr[:i], "[]"), r.Addr[i+1:]
	port, _ := strconv.Atoi(portStr) // CheckListenAddr vetted it
	var ip netip.Addr
	if host != "" {
		ip, _ = netip.ParseAddr(host)
	}
	last := r.Network[len(r.Network)-1]
	v6 := last == '6' || (last != '4' && (!ip.IsValid() || ip.Is6()))
	typ := unix.SOCK_STREAM
	if strings.HasPrefix(r.Network, "udp") {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil && v6 && last != '6' && !ip.IsValid() {
		// No IPv6 on this host: the wildcard falls back to IPv4, as in Go.
		family, v6 = unix.AF_INET, false
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, "socket", errnoOf(err)
	}
	fail := func(op string, err error) (int, string, syscall.Errno) {
		unix.Close(fd)
		return -1, op, errnoOf(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	var sa unix.Sockaddr
	if v6 {
		only := 0
		if last == '6' {
			only = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
			return fail("setsockopt", err)
		}
		s6 := &unix.SockaddrInet6{Port: port}
		if ip.IsValid() {
			s6.Addr = ip.As16()
		}
		sa = s6
	} else {
		s4 := &unix.SockaddrInet4{Port: port}
		if ip.IsValid() {
			s4.Addr = ip.As4()
		}
		sa = s4
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, listenBacklog); err != nil {
			return fail("listen", err)
		}
	}
	return fd, "", 0
}

// listenUnix makes a unix stream listener at r.Addr. The socket file never
// has more permissions than the rule's mode: the socket's own mode, set
// before bind, bounds the file bind creates (the umask only removes
// bits), and a chmod afterwards gives it exactly the rule's mode.
func listenUnix(r policy.Rule) (int, string, syscall.Errno) {
	mode := r.CreateMode
	if mode == 0 {
		mode = policy.DefaultSocketMode
	}
	var st unix.Stat_t
	switch err := unix.Lstat(r.Addr, &st); {
	case err == nil && r.Replace && st.Mode&unix.S_IFMT == unix.S_IFSOCK:
		if err := unix.Unlink(r.Addr); err != nil {
			return -1, "unlink", errnoOf(err)
		}
	case err == nil:
		// Something is there and may not be replaced.
		return -1, "bind", unix.EADDRINUSE
	case err != unix.ENOENT:
		return -1, "lstat", errnoOf(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, "socket", errnoOf(err)
	}
	fail := func(op string, err error) (int, string, syscall.Errno) {
		unix.Close(fd)
		return -1, op, errnoOf(err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fail("fchmod", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: r.Addr}); err != nil {
		return fail("bind", err)
	}
	cleanup := func(op string, err error) (int, string, syscall.Errno) {
		unix.Unlink(r.Addr)
		return fail(op, err)
	}
	if err := unix.Chmod(r.Addr, mode); err != nil {
		return cleanup("chmod", err)
	}
	if r.UID != policy.NoOwner || r.GID != policy.NoOwner {
		if err := unix.Fchownat(unix.AT_FDCWD, r.Addr, kernelID(r.UID), kernelID(r.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return cleanup("chown", err)
		}
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return cleanup("listen", err)
	}
	return fd, "", 0
}
