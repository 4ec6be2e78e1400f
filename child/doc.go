// Package child is the opener's public entry point: the privileged side of
// privsep. Init (or Main) turns the re-executed process into the opener,
// which checks each request from the parent against a policy fixed at
// start, opens the file and sends the descriptor back; Serve and
// ListenSocket run the same opener as a server for unrelated processes
// (server mode, "privsep serve"). The code that serves lives in
// internal/opener (a session, its workers and its opens, shared by both)
// and internal/server (accepting, authenticating and bounding clients);
// this package starts them and carries their public names.
//
// # Becoming the opener
//
// The parent (package parent) starts the opener by re-executing its own
// binary with a marker and the number of the opener's socket on argv. A
// program that embeds privsep calls [Init] first thing in main:
//
//	func main() {
//		child.Init() // never returns in the opener
//		// ... the program proper, which calls parent.Start ...
//	}
//
// In a test binary, call Init from TestMain before m.Run.
//
// # What the opener trusts
//
// Nothing after the hello. The parent may be compromised: that is the point
// of separating privileges. Before it serves, the opener checks that its
// socket is an AF_UNIX SOCK_SEQPACKET socket whose peer (SO_PEERCRED) is its
// parent process, and closes any descriptor that leaked in across exec. The
// first message fixes the policy; a second hello is refused. Every request is
// checked by package policy and then opened with openat2(2) beneath the
// rule's directory (RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, and
// RESOLVE_NO_SYMLINKS for exact-file rules), so that a symlink, a ".." on
// disk or a rename race cannot leave the rule's tree. Where openat2 is
// missing it walks the path one component at a time and refuses every
// symlink. Only regular files are handed out, and directories under a rule
// with dirs=yes: a directory descriptor lets its holder walk ".." with its
// own credentials (and fchdir out of a chroot), so without the option an
// open that lands on one is refused with ReasonDirectory, and the parent
// lists the directory with a readdir request instead, which the opener
// answers in bounded replies, holding no descriptor between them. The
// opener never blocks opening a FIFO or a device.
//
// # No path from "/"
//
// The opener resolves one path on its own: "/", once, at start. Every rule
// directory and every unix-socket listen rule's directory is resolved from
// that descriptor at the handshake (RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS:
// the policy author's symlinks are followed then, magic links never), and
// every later system call that takes a path takes it relative to one of
// those pinned descriptors and follows no symlink. That covers binding,
// chmod, chown, unlink and rename too: a unix socket is bound in a private
// directory the opener makes, with its mode fixed before bind, and renamed
// into place (see PROTOCOL.md, "listen"). A test (nopath_test.go) fails on
// any path-based call in the opener's packages (this one, internal/opener
// and internal/server).
//
// A rule directory that resolves into a process's own directory on procfs
// (where /proc/self leads) is refused at the handshake with an
// [*OwnProcessError]: a rule there would hand out the opener's memory.
// A tree rule whose directory does not resolve is refused there too, with
// a [*MissingDirError] naming the rule (the parent sees a hello refused
// with reason 3 and the errno), unless the rule says optional=yes.
//
// # Concurrency and exit status
//
// Up to a fixed number of workers (eight; a server's session has
// ServerConfig.WorkersPerConn) serves each connection. One of them at a
// time holds the receiving role and receives, decides, opens and replies
// request after request; when a request stalls (an open on a hung mount)
// the role passes to another worker, started then if need be, so one slow
// open does not stall the others, and no goroutine is started per request (internal/opener, "The
// receiving role", states the invariant). The exit status says how the
// opener ended: 0 at end of stream, 1 on an internal error, 2 on a bad
// invocation, 3 on a protocol violation (see PROTOCOL.md). Every decision
// is an audit event in the JSON log on stderr: denials at warn, grants at
// debug.
//
// # What it is not for
//
// It is not the client side (package parent asks, this package answers),
// and it holds no policy logic of its own (package policy decides). Server
// mode is for processes that cannot start their own opener; a program that
// can should use parent.Start, whose opener serves it alone.
//
// # Platforms
//
// The opener runs on Linux only. On other systems the package builds with
// the same exported API: Init does nothing (no process there is an opener)
// and Main, Serve and ListenSocket return or report an error matching
// errors.ErrUnsupported that names the platform.
package child
