package child

// Server mode's public names. The code is in internal/server (and the
// opener's core, which it shares with the re-executed opener, in
// internal/opener); these are its entry points for programs and for the
// CLI's "privsep serve". On systems other than Linux they build and fail
// with an error matching errors.ErrUnsupported.

import (
	"context"
	"net"
	"os"

	"github.com/privsep-go/privsep/internal/opener"
	"github.com/privsep-go/privsep/internal/server"
)

// Defaults for ServerConfig.
const (
	DefaultMaxClients        = server.DefaultMaxClients
	DefaultMaxSessionsPerUID = server.DefaultMaxSessionsPerUID
	DefaultIdleTimeout       = server.DefaultIdleTimeout
	DefaultWorkersPerConn    = server.DefaultWorkersPerConn
	DefaultShutdownTimeout   = server.DefaultShutdownTimeout
	DefaultSendTimeout       = server.DefaultSendTimeout
	DefaultHelloTimeout      = server.DefaultHelloTimeout
)

// ServerConfig says how Serve serves: the policies, who may connect, and
// the limits (each field is documented on its definition).
type ServerConfig = server.Config

// ServerReload is a new policy sent on ServerConfig.Reload.
type ServerReload = server.Reload

// OwnProcessError reports a rule directory that resolves into a process's
// own directory on procfs: the opener (or Serve) refuses the whole policy.
type OwnProcessError = opener.OwnProcessError

// MissingDirError reports a tree rule whose directory did not resolve when
// the policy was loaded, and that does not say optional=yes: Serve (and the
// opener) refuse the whole policy, naming the rule.
type MissingDirError = opener.MissingDirError

// CheckServer does what Serve does before it accepts, without a socket:
// it resolves every policy's rule directories and returns what Serve would
// refuse to start with, or nil. privsep serve --check uses it.
func CheckServer(cfg ServerConfig) error { return server.Check(cfg) }

// Socket is a server's listening socket file, made by ListenSocket. Its
// Remove removes the file if it is still the one ListenSocket made, in the
// directory it was made in.
type Socket = server.Socket

// Serve serves clients on ln, a listening AF_UNIX SOCK_SEQPACKET socket
// (net.ListenUnix("unixpacket", ...) or net.FileListener of one), until ctx
// is done. It takes ownership of ln and closes it.
//
// Each connection is authenticated from the kernel's view of its peer
// (ServerConfig.AllowUIDs) and then gets a session of its own: it sends a
// hello with no rules and no flags, the server answers ready with its pid,
// and from then on serves the client's requests under the client's policy
// (ServerConfig.Policies), exactly as an opener serves its parent. See
// PROTOCOL.md, "Server mode".
//
// When ctx is done Serve stops accepting, shuts down the read side of every
// connection so that its workers answer what they already received and
// finish, waits for them up to ShutdownTimeout, cuts off what is left, and
// returns nil. It returns an error if ln is not a SOCK_SEQPACKET socket, if
// the configuration is unusable, or if accepting fails for good.
func Serve(ctx context.Context, ln *net.UnixListener, cfg ServerConfig) error {
	return server.Serve(ctx, ln, cfg)
}

// ListenSocket creates a listening AF_UNIX SOCK_SEQPACKET socket at path for
// Serve, whose file has exactly mode (permission bits only) and, if gid is
// not -1, that group. path must be absolute and clean. Its directory is
// resolved once, from "/", never through a magic link, and everything else
// is done relative to it without following a symlink: the socket is bound
// in a private directory with its mode already set (fchmod before bind(2),
// under a zero umask) and its group, and only then moved to path in one
// step; it listens after that. No one can connect before the file has its
// mode and group. The listener's address is path; in a process without
// CAP_SYS_CHROOT it is path relative to "/" (see PROTOCOL.md, "listen").
//
// An existing path is replaced only when it is a stale socket: a socket
// that nobody answers on (connect(2) says ECONNREFUSED). Anything else
// there, a file of another type or a socket that a server answers on, is an
// error, and nothing is removed. To look, the existing file is exchanged
// with the new socket (renameat2 RENAME_EXCHANGE) and exchanged back unless
// it is stale, so for that moment a client of a live server at path is
// refused.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	return server.ListenSocket(path, mode, gid)
}
