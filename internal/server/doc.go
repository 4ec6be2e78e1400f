// Package server is server mode ("privsep serve", child.Serve): one
// long-running opener on a listening SOCK_SEQPACKET unix socket, serving
// unrelated processes under the server's own policy.
//
// It accepts connections, authenticates each from the kernel's view of its
// peer (SO_PEERCRED, and SO_PEERPIDFD for a pid that cannot be recycled
// under it), admits it within the limits of Config (clients at once,
// sessions per uid), and runs an internal/opener session for it with its
// sends bounded (SendTimeout) and an idle timeout. ListenSocket makes the
// server's socket file with internal/opener's socket-file helper.
//
// # What it guarantees
//
// A client is served only if its uid or gid is allowed, and only under the
// policy its ids select; nothing it says chooses the policy (a hello with
// rules or flags is refused). A client that stops reading, sends nothing
// or holds a session idle costs a bounded time and only its own session.
// Refusals are sent before anything is read. Serve closes its listener and,
// on shutdown, lets sessions answer what they received before cutting them
// off.
//
// # What it is not for
//
// It is not the public API: programs use child.Serve, child.ServerConfig
// and child.ListenSocket, which are this package's names. It does not open
// files itself; internal/opener does. On systems other than Linux its
// entry points fail with an error matching errors.ErrUnsupported.
package server
