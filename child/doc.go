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
// symlink. Only regular files and directories are handed out; the opener
// never blocks opening a FIFO or a device.
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
