// Package broker serves an unmodified program's opens from the opener.
// The program runs under a seccomp filter that turns each of its open,
// openat, openat2 and creat calls into a notification (seccomp_unotify(2));
// the supervisor, the opener, reads the call, decides, and either places a
// descriptor it opened in the program as the call's result, fails the
// call with an errno, or lets the kernel carry it out with the program's
// own credentials.
//
// The package is the mechanism only. What to serve is the Decider's
// business: privsep's opener implements it with the same policy check,
// containment (openat2 RESOLVE_BENEATH beneath the rule directories
// pinned at handshake), flag sanitising, file-type checks and audit log
// as an Open request.
//
// # Use
//
// Program side, in the exec trampoline, on a locked thread, after the
// privileges are dropped and no_new_privs is set, right before execve:
//
//	lfd, err := broker.InstallFilter()
//	// send lfd to the supervisor with SCM_RIGHTS, wait for its ack,
//	unix.Close(lfd)
//	syscall.Exec(path, argv, env)
//
// The ack matters: the dynamic loader's first opens follow execve at
// once, and each waits until someone reads the listener.
//
// Supervisor side, in the opener, once the listener has arrived:
//
//	err := broker.Serve(ctx, lfd, decider) // returns nil when the program is gone
//
// # What it guarantees
//
// The filter checks the architecture: a call of another ABI (int 0x80
// from a 64-bit program, x32 numbers on amd64, a 32-bit program) kills
// the process, so no open goes around the broker unnotified.
//
// Each call's path, and openat2's open_how, are read from the program's
// memory once (process_vm_readv, a page at a time, at most PATH_MAX); the
// Decider decides on that copy and the opener opens that copy. A relative
// path is joined to the directory it is relative to, taken from the
// program as an object (pidfd_getfd for a dirfd; procfs's cwd link for
// the current directory, which no descriptor holds) and named by the
// supervisor's kernel, never by the program. The notification id is
// checked after the reads (so a pid reused meanwhile is never read) and
// before every reply. Malformed calls fail with the errno the kernel
// would give (EFAULT, ENAMETOOLONG, EINVAL, E2BIG, EBADF, ENOTDIR).
//
// When Serve returns, or the supervisor dies, the kernel fails every
// pending and later notified call with ENOSYS: nothing hangs. To have the
// program killed instead, run KillWhenExits in a process that outlives
// the supervisor and holds a copy of the listener (see KillWhenExits).
//
// # What it is not
//
// The broker grants; it does not confine. A call answered with Continue
// runs with the program's own credentials, and the kernel reads the path
// again after the decision (another thread may have changed it): that is
// harmless only because Continue grants nothing the program did not
// have. Refusing everything the policy does not allow (a broker-only
// mode that never continues) is still no sandbox: the program has other
// ways to reach files (io_uring, execve, open_by_handle_at with
// privileges, descriptors it inherited) that the filter does not see.
// Confinement is Landlock's job, and the two compose: Landlock checks
// the program's own opens, and a descriptor the opener opened and placed
// passes no Landlock check of the program's.
//
// Serve needs ptrace access to the program (CAP_SYS_PTRACE, or the same
// uid under Yama's rules) for process_vm_readv and pidfd_getfd, and
// paths are composed in the supervisor's mount namespace: a program in
// another one sees the same names only if the namespaces agree.
package broker
