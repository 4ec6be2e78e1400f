// Package child is the opener: the privileged side of privsep. It checks
// each request from the parent against a policy fixed at start, opens the
// file and sends the descriptor back.
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
// any path-based call in the opener's packages.
//
// A rule directory that resolves into a process's own directory on procfs
// (where /proc/self leads) is refused at the handshake with an
// [*OwnProcessError]: a rule there would hand out the opener's memory.
//
// # Concurrency and exit status
//
// A fixed set of workers (DefaultWorkers) each receive, decide, open and
// reply on their own, so one slow open does not stall the others and no
// goroutine is started per request. The exit status says how the opener
// ended: 0 at end of stream, 1 on an internal error, 2 on a bad invocation,
// 3 on a protocol violation (see PROTOCOL.md). Every decision is an audit
// event in the JSON log on stderr: denials at warn, grants at debug.
//
// # Platforms
//
// The opener runs on Linux only. On other systems the package builds with
// the same exported API: Init does nothing (no process there is an opener)
// and Main, Serve and ListenSocket return or report an error matching
// errors.ErrUnsupported that names the platform.
package child
