package cli

import (
	"fmt"
	"io"

	"github.com/privsep-go/privsep/internal/bench"
)

// Exit statuses of the command.
const (
	exitOK    = 0
	exitFail  = 1 // something the command was asked to do failed
	exitUsage = 2 // the command line is wrong
)

const mainUsage = `privsep: open files through a privilege-separated opener.

The opener is a child process that runs with the privileges privsep was
started with. It checks each request against a policy fixed at start,
opens the file beneath the rule's directory so that symlinks and ".."
cannot escape, and passes the open descriptor back.

Usage:
  privsep cat [--allow RULE]... [--policy FILE]... [--log-level LEVEL] FILE...
  privsep policy check [--allow RULE]... [--policy FILE]... [--access r|w|rw|a] [--create] PATH...
  privsep exec [--allow RULE]... [--policy FILE]... [--open [FD=][MODES:]PATH]...
               [--user USER] [--group GROUP] [--landlock] [--keep-opener] -- CMD [ARG...]
  privsep demo [--user USER]
  privsep serve --socket PATH [--allow RULE]... [--policy FILE]...
                [--allow-uid UID|USER]... [--allow-gid GID|GROUP]...
                [--socket-mode 0660] [--socket-group GROUP] [--max-clients N]
  privsep get --socket PATH FILE...
  privsep bench [--json] [--duration D] [--rounds N] [--ref-dir DIR]
  privsep help [COMMAND]

Commands:
  cat            print files, opened through the opener
  policy check   say whether a policy allows paths, and which rule decides
  exec           open files as root, drop privileges, run a command with them
  demo           watch privilege separation work and fail safely, step by step
  serve          serve files to other processes on a unix socket
  get            print files, opened through a running privsep serve
  bench          measure what the opener costs on this machine
  help           show help for a command

Rules are [MODES:]PATH: PATH allows exactly that file, PATH/ anything
beneath that directory. MODES is a set of r (read), w (write), a (append
only) and c (create); no MODES means r. Policy files hold one rule per
line, with options (mode=0640, owner=USER[:GROUP]); see README.md.

Run "privsep COMMAND --help" for a command's options.
`

// Main runs the privsep command line args (without the program name),
// writing to stdout and stderr, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	// privsep bench times a bare re-exec of this binary, which exits here.
	if bench.IsBareStart() {
		return exitOK
	}
	return run(args, stdout, stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "cat":
		return cat(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "exec":
		return execCmd(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "serve":
		return serveCmd(args[1:], stdout, stderr)
	case "get":
		return getCmd(args[1:], stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			return run(append(args[1:], "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "privsep: unknown command %q\n\n%s", args[0], mainUsage)
	return exitUsage
}
