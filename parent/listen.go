//go:build linux

package parent

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// Listen asks the opener for a listening socket, as net.Listen would make
// one: network is "tcp", "tcp4", "tcp6" or "unix", addr as Go writes it
// (":443", "127.0.0.1:8443", "[::1]:443", a path for unix). The opener
// creates, binds and listens with its own privileges, so an unprivileged
// parent can serve on port 443; the policy must have a listen rule naming
// exactly this network and address.
//
// Errors are *net.OpError with Op "listen": a refusal wraps a
// *RefusedError (errors.Is(err, ErrDenied)), a failure the real errno
// (errors.Is(err, syscall.EADDRINUSE)). The listener works with http.Serve
// and everything else that takes a net.Listener.
func (o *Opener) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	if !policy.IsListenNetwork(network) || policy.IsPacketNetwork(network) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	return listenAs(ctx, o, network, addr, net.FileListener)
}

// ListenPacket is Listen for "udp", "udp4" and "udp6": it returns a bound
// UDP socket as a net.PacketConn.
func (o *Opener) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	if !policy.IsPacketNetwork(network) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	return listenAs(ctx, o, network, addr, net.FilePacketConn)
}

// listenAs is Listen and ListenPacket past their checks of network: it
// asks for the socket and makes it what they return with conv, which dups
// the descriptor, so the file from the opener is closed either way.
func listenAs[T any](ctx context.Context, o *Opener, network, addr string, conv func(*os.File) (T, error)) (T, error) {
	var none T
	f, err := o.listen(ctx, network, addr)
	if err != nil {
		return none, err
	}
	defer f.Close()
	v, err := conv(f)
	if err != nil {
		return none, &net.OpError{Op: "listen", Net: network, Addr: opAddr(network, addr), Err: err}
	}
	return v, nil
}

// ListenFile is Listen (or ListenPacket, for udp networks) returning the
// socket itself as a file, for handing it to another program: privsep exec
// --listen places such files at descriptors 3 and up.
func (o *Opener) ListenFile(ctx context.Context, network, addr string) (*os.File, error) {
	return o.listen(ctx, network, addr)
}

// listen sends a listen request and returns the socket as a file.
func (o *Opener) listen(ctx context.Context, network, addr string) (*os.File, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: opAddr(network, addr), Err: err}
	}
	if err := policy.CheckListenAddr(network, addr); err != nil {
		return nil, opErr(&RefusedError{Reason: protocol.ReasonBadRequest, Errno: syscall.EINVAL, Why: err.Error()})
	}
	c := o.getCall()
	var err error
	if c.buf, err = protocol.AppendListen(c.buf[:0], 0, network, addr); err != nil {
		o.putCall(c)
		return nil, opErr(err)
	}
	if err := o.roundTrip(ctx, c); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, opErr(err)
		}
		return nil, err
	}
	defer o.putCall(c)
	if c.err != nil {
		return nil, c.err
	}
	if len(c.fds) == 0 {
		errno := syscall.Errno(c.reply.Errno)
		if c.reply.Reason == protocol.ReasonSystem {
			if errno == syscall.EACCES && privilegedPort(network, addr) {
				return nil, opErr(&lowPortError{errno})
			}
			return nil, opErr(errno)
		}
		return nil, opErr(&RefusedError{Reason: c.reply.Reason, Errno: errno})
	}
	// The File takes ownership of the descriptor; the caller closes it.
	return os.NewFile(uintptr(c.fds[0]), network+":"+addr), nil
}

// opAddr makes the net.Addr an OpError names; nil when addr does not parse.
func opAddr(network, addr string) net.Addr {
	switch {
	case network == "unix":
		return &net.UnixAddr{Name: addr, Net: network}
	case policy.CheckListenAddr(network, addr) != nil:
		return nil
	case policy.IsPacketNetwork(network):
		if a, err := net.ResolveUDPAddr(network, addr); err == nil {
			return a
		}
	default:
		if a, err := net.ResolveTCPAddr(network, addr); err == nil {
			return a
		}
	}
	return nil
}

// privilegedPort reports whether addr names an IP port below 1024, which
// only root (CAP_NET_BIND_SERVICE) may bind by default.
func privilegedPort(network, addr string) bool {
	if network == "unix" {
		return false
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 1024
}

// lowPortError is EACCES from binding a port below 1024: it says what to do.
type lowPortError struct{ errno syscall.Errno }

func (e *lowPortError) Error() string {
	return e.errno.Error() + ": binding a port below 1024 needs root (CAP_NET_BIND_SERVICE) in the opener: start privsep as root; the opener binds the port, and the program runs as --user"
}

func (e *lowPortError) Unwrap() error { return e.errno }
