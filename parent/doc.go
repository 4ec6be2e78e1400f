// Package parent is the unprivileged side of privsep: it starts the opener
// (package child) while the program still has its privileges, asks it for
// files and listening sockets over a Unix socket, and gives up the
// program's own privileges.
//
// # The invariant
//
// Everything the program opens after it gives up its privileges, it opens
// through the opener, and the opener opens only what the policy fixed when
// it started allows. The policy cannot change afterwards: a parent that is
// compromised later can ask for nothing the policy did not already grant,
// and every path is resolved beneath its rule's directory, never from "/",
// and never through a symlink that leaves it. Each descriptor the opener
// sends is the caller's: Open returns it as an *os.File to close.
//
// # Starting and using the opener
//
// [Start] re-executes the program as the opener with a policy fixed for the
// opener's life; [Opener.Open], [Opener.OpenBatch], [Opener.Listen] and
// [Opener.FS] ask it for descriptors; [Opener.Close] ends it and reports
// its exit status. [Dial] connects to an opener server (privsep serve),
// [Inherited] picks up an opener passed by privsep exec --keep-opener. The
// policy comes from [Config] (Rules and Listen, in the command-line form),
// or from policy files through [PolicySource].
//
// # A deployment
//
// A web server started as root keeps its TLS key and its access log
// behind the opener, binds port 443 through it, and then becomes user www
// in a Landlock sandbox:
//
//	func main() {
//		child.Init() // first: in the opener, this runs the opener and never returns
//		ctx := context.Background()
//		op, err := parent.Start(ctx, parent.Config{
//			Rules:  []string{"r:/etc/app/tls/", "a:/var/log/app/access.log"},
//			Listen: []string{"tcp:0.0.0.0:443"},
//		})
//		if err != nil {
//			log.Fatal(err)
//		}
//		ln, err := op.Listen(ctx, "tcp", "0.0.0.0:443")
//		...
//		cred, err := parent.LookupCredential("www", "")
//		...
//		if _, err := parent.Sandbox(parent.SandboxConfig{Credential: &cred, Landlock: &parent.LandlockConfig{}}); err != nil {
//			log.Fatal(err)
//		}
//		// From here on: op.Open(ctx, "/etc/app/tls/key.pem", os.O_RDONLY, 0)
//		// and op.Open(ctx, "/var/log/app/access.log", os.O_WRONLY|os.O_APPEND, 0)
//		// work; nothing else outside the sandbox does.
//	}
//
// Several programs on one host can share one opener server instead
// (privsep serve, [Dial]), whose policy depends on the client's uid and
// gid.
//
// # Sandboxing the program
//
// Once the opener runs, the program needs none of its privileges. [Sandbox]
// gives them up in one call, in this order and on every thread of the
// process:
//
//  1. it builds the Landlock ruleset while it still may open every rule
//     path;
//  2. it sets the supplementary groups (none, usually), then the gids,
//     then the uids, to those of a [Credential] (see [LookupCredential]);
//  3. it sets no_new_privs, which Landlock requires of a process that no
//     longer has CAP_SYS_ADMIN;
//  4. it applies Landlock: the files and trees of [LandlockConfig] stay
//     readable (ReadOnly) or writable (ReadWrite) and nothing else does;
//     only the TCP ports it names may be bound or connected to (ABI 4);
//     abstract unix sockets and processes outside the sandbox cannot be
//     reached (ABI 6 scopes); truncating and device ioctls follow the file
//     rights (ABI 3 and 5).
//
// Then it checks: every thread in /proc/self/task has the ids, the groups
// and no_new_privs; becoming root again fails; an open outside the rules
// fails with EACCES. A failed check is an error ([ErrSandboxVerify]), never
// a result with a field saying "partly". The opener's socket and every
// descriptor the program already holds keep working.
//
//	op, err := parent.Start(ctx, parent.Config{Rules: []string{"/etc/app/key.pem"}})
//	...
//	cred, err := parent.LookupCredential("app", "") // reads /etc/passwd: before the sandbox
//	...
//	_, err = parent.Sandbox(parent.SandboxConfig{
//		Credential: &cred,
//		Landlock:   &parent.LandlockConfig{}, // deny all Landlock can
//	})
//	if err != nil {
//		log.Fatal(err) // partly sandboxed: do not go on
//	}
//
// [DropPrivileges], [SetNoNewPrivs] and [Landlock] are the steps one by
// one, each on every thread as well.
//
// # Running another program with the descriptors
//
// [Exec] is privsep exec's second half as library code: it applies a
// SandboxConfig, then replaces the process with a command (same pid) that
// gets descriptors 0 to 2, the [ExecFile]s at their numbers, the named
// inherited descriptors, and nothing else, with LISTEN_FDS, LISTEN_PID and
// LISTEN_FDNAMES set as sd_listen_fds(3) expects when the numbers are
// 3, 4, … The binary re-executes itself once on the way, so its main must
// call child.Init first, as for Start.
//
// # Every thread, with or without cgo
//
// Linux applies credentials, no_new_privs and Landlock to one thread at a
// time, and a Go program runs goroutines on many threads. A program linked
// with cgo, which is the default wherever a C compiler is present (os/user
// and net pull it in), cannot use Go's syscall.AllThreadsSyscall. privsep
// reaches every thread through kernel.org/pub/linux/libs/security/libcap/psx,
// which is AllThreadsSyscall without cgo and, with cgo, stops every thread
// of the Go and C runtimes to run the call on each; the ids are set with
// Go's syscall.Setresuid and friends, which the C library broadcasts to
// every thread under cgo. Where the kernel has Landlock's TSYNC flag (ABI
// 8) it restricts every thread at once instead. There is no partial
// result: a thread not reached is an error.
//
// Two consequences under cgo: psx lists /proc/PID/task after restricting
// the calling thread, so a Landlock ruleset keeps listing that one
// directory allowed (not reading what is in it). And whatever the build,
// while TCP is restricted a seccomp filter makes creating MPTCP sockets
// fail with EACCES, because Landlock's TCP rules do not cover them and Go's
// net.Listen uses them; Go falls back to plain TCP. linux/386 has no such
// filter (socketcall hides its arguments from seccomp): there
// [TCPRestrictable] is false and restricting TCP is an error naming
// IPPROTO_MPTCP, unless BestEffort or AnyTCP.
//
// # Kernels without every feature
//
// Without [LandlockConfig.BestEffort], a kernel whose Landlock ABI cannot
// apply a restriction asked for is an error ([*LandlockUnsupportedError],
// or [ErrNoLandlock] without Landlock). With it, what can be applied is, and
// [LandlockResult.NotApplied] names every restriction that was not. A rule
// path that does not exist is an error unless [LandlockConfig.AllowMissing].
//
// # Notes
//
// An Opener is safe for concurrent use. There is no goroutine that reads
// replies: a caller waiting for its reply reads for everyone (the reading
// role, see reader.go), and single opens under load go out together as one
// batch, so many callers share a round trip.
//
// Errors: a refusal by the policy is an *fs.PathError whose Err is a
// [*RefusedError]; it matches [ErrDenied] and fs.ErrPermission, and its
// predicates (Denied, Escape, Directory, ...) say why. A failure of the
// open itself carries the kernel's errno. Once the opener has died, every
// call returns its [*ExitError], which embeds the *os.ProcessState as
// exec.ExitError does.
//
// Close lets the opener answer what it has, waits for it to exit
// (Config.CloseTimeout, then it kills it) and for the calls in flight, and
// only then closes the socket; calls after Close return [ErrClosed].
//
// The opener never outlives its socket: when the parent dies, the opener
// sees end of stream and exits. It gets an environment of its own and, of
// the program's descriptors, only its socket and stderr; it keeps the
// privileges the program had when it called Start.
package parent
