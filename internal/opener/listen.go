//go:build linux

package opener

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// ListenBacklog is the backlog passed to listen(2); the kernel caps it at
// net.core.somaxconn, as it does for Go's net.Listen.
const ListenBacklog = 4096

// listen decides and carries out one listen request. On success it returns
// the socket, which the caller owns.
func (w *worker) listen(l protocol.Listen) (int, protocol.Status) {
	addr := string(l.Addr)
	r, err := w.s.rs.pol.CheckListen(l.Network, addr)
	if err != nil {
		ref := refusalOf(err)
		reason := protocol.ReasonDenied
		if ref.Kind == policy.BadRequest {
			reason = protocol.ReasonBadRequest
		}
		w.s.log.Warn("denied listen", "network", l.Network, "addr", printable(l.Addr), "reason", reason.String(), "why", ref.Why)
		return -1, protocol.Status{Errno: uint32(ref.Errno), Reason: reason}
	}
	listen := listenInet
	if r.Network == "unix" {
		listen = w.listenUnix
	}
	fd, op, err := listen(r)
	if err != nil {
		errno := errnoOf(err)
		w.s.log.Warn("listen failed", "network", r.Network, "addr", r.Addr, "op", op, "errno", errno.Error(), "error", err)
		return -1, protocol.Status{Errno: uint32(errno), Reason: protocol.ReasonSystem}
	}
	w.s.log.Info("granted listen", "network", r.Network, "addr", r.Addr, "rule", r.String())
	return fd, protocol.Status{}
}

// listenInet makes a TCP listener or a bound UDP socket for r, with the
// options Go's net package would set: SO_REUSEADDR for TCP, and
// IPV6_V6ONLY exactly for tcp6 and udp6, so that "tcp" on an empty host is
// one dual-stack socket.
func listenInet(r policy.Rule) (int, string, error) {
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
		return -1, "socket", err
	}
	fail := func(op string, err error) (int, string, error) {
		unix.Close(fd)
		return -1, op, err
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
		if err := unix.Listen(fd, ListenBacklog); err != nil {
			return fail("listen", err)
		}
	}
	return fd, "", nil
}

// listenUnix makes a unix stream listener at r.Addr, in the socket
// directory pinned at the handshake (see MakeSocket): the file is born with
// the rule's mode and gets its owner before anyone can reach it, and with
// replace only a socket is ever removed.
func (w *worker) listenUnix(r policy.Rule) (int, string, error) {
	mode := r.CreateMode
	if mode == 0 {
		mode = policy.DefaultSocketMode
	}
	rs := w.s.rs
	i, ok := rs.sockDir[r.Addr]
	if !ok { // cannot happen: NewRuleset pins a directory for every unix listen rule
		return -1, "pin", unix.EIO
	}
	if rs.dirs[i] < 0 {
		return -1, "socket directory", rs.dirErr[i]
	}
	dir, name := SplitSocketPath(r.Addr)
	sp := SocketSpec{Dir: rs.dirs[i], DirPath: dir, Name: name, Type: unix.SOCK_STREAM, Mode: mode, UID: kernelID(r.UID), GID: kernelID(r.GID)}
	if r.Replace {
		sp.Replace = replaceSocket
	}
	fd, _, err := MakeSocket(sp)
	if err != nil {
		return -1, "socket file", err
	}
	if err := unix.Listen(fd, ListenBacklog); err != nil {
		// The file stays: it is a socket nobody listens on, which a later
		// listen with replace may replace.
		unix.Close(fd)
		return -1, "listen", err
	}
	return fd, "", nil
}

// replaceSocket allows replace to remove a socket file, and nothing else.
func replaceSocket(_ int, _ string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("exists and is not a socket (mode %#o); replace removes only sockets: %w", st.Mode, errInUse)
	}
	return nil
}

// SplitSocketPath splits a clean absolute socket path into its directory
// and its name.
func SplitSocketPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}
