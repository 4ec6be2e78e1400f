// Package opener is the opener's core: what serves one session on one
// socket, shared by the re-executed opener process (package child) and by
// server mode (internal/server).
//
// It holds the ruleset (a compiled policy with its directories pinned:
// Ruleset, DirTable, PinRoot, ResolveDir), the session and its workers
// (Session, the receiving role, the handshake of the opener process), the
// opens beneath a pinned directory (openat2, or the component walk where
// openat2 is missing), directory listings, listen rules, and the one helper
// that makes unix socket files for both listen rules and a server's own
// socket (MakeSocket, in sockfile.go). It also serves the open broker
// (broker.go): with the hello's HelloBroker, one broker message hands it a
// seccomp listener, and each call it reports is decided and opened by the
// same open path as an Open request (worker.openDecided).
//
// # What it guarantees
//
// Every path it resolves is resolved from a descriptor pinned at the
// handshake and follows no symlink, for opens and for every other
// privileged call (bind, chmod, chown, unlink, rename): PinRoot's open of
// "/" is the one exception, and child/nopath_test.go fails on any other.
// Every request is checked by package policy before anything is opened.
// A session's workers allocate nothing per request in the steady state.
// Every descriptor that arrives with a request is closed.
//
// # What it is not for
//
// It does not decide whom to serve: the opener process trusts its parent
// (checked by package child at start), and internal/server authenticates
// its clients and bounds them. It builds on Linux only; on other systems
// the package holds only the error type it shares with them.
package opener
