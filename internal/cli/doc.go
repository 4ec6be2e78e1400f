// Package cli is the privsep command line: one file per subcommand (cat,
// exec, demo, serve, get, policy check, bench, completion, version), the
// flags they share and the GNU-style scan of the command line (flags.go),
// the completion scripts and the man page generated from the same flag
// definitions and help texts (completion.go, man.go; privsep.1 at the
// module root is rewritten by go generate), and [Main], which the privsep
// binary's main calls after child.Init.
//
// # Guarantees
//
// What a user of the command relies on: every subcommand's --help text,
// its messages ("privsep CMD: what failed: why") and its exit statuses
// (0 done, 1 failed, 2 usage; privsep exec 125, 126, 127 after env(1);
// 3 where a subcommand needs Linux and this is not Linux, in which case
// only policy check runs). The end-to-end tests at the module root run the
// built binary against all of it.
//
// # Not for
//
// Library code. Everything a program embedding privsep needs is in
// packages parent, child and policy, which the subcommands only call: the
// opener, the sandbox, and parent.Exec, the descriptor placement behind
// privsep exec. This package holds flag parsing, wording and exit
// statuses, and is internal so that none of it becomes API.
package cli
