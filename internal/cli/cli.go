package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

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
  privsep completion bash|zsh|fish
  privsep version | privsep --version
  privsep help [COMMAND]

Commands:
  cat            print files, opened through the opener
  policy check   say whether a policy allows paths, and which rule decides
  exec           open files as root, drop privileges, run a command with them
  demo           watch privilege separation work and fail safely, step by step
  serve          serve files to other processes on a unix socket
  get            print files, opened through a running privsep serve
  bench          measure what the opener costs on this machine
  completion     print a shell completion script
  version        print the version and VCS revision privsep was built from
  help           show help for a command

Rules are [MODES:]PATH: PATH allows exactly that file, PATH/ anything
beneath that directory. MODES is a set of r (read), w (write), a (append
only) and c (create); no MODES means r. Policy files hold one rule per
line, with options (mode=0640, owner=USER[:GROUP]); see README.md.

Command-line conventions: flags may come before or after operands
(privsep cat FILE --allow DIR/), and are written --flag or --flag=VALUE;
after "--" everything is an operand. privsep exec is the exception: its
first operand starts CMD, whose own flags are never privsep's. A relative
path on the command line (an operand, a rule, --open, --socket, a Landlock
path) is made absolute against the current directory before anything else;
paths in policy files must be absolute. A bad flag or unknown command
exits with status 2 (privsep exec: 125).

Run "privsep COMMAND --help" for a command's options.
`

// Main runs the privsep command line args (without the program name),
// writing to stdout and stderr, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	// privsep bench times a bare re-exec of this binary, which exits here.
	if bench.IsBareStart() {
		bench.FinishBareStart()
		return exitOK
	}
	// Its raw Go loop baseline re-executes this binary as its opener.
	if bench.IsRawOpener() {
		if err := bench.RunRawOpener(); err != nil {
			fmt.Fprintf(stderr, "privsep bench: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	// Its server-mode figure may hold the clients' ends of the sessions in
	// a re-executed child.
	if bench.IsServerClients() {
		if err := bench.RunServerClients(context.Background(), os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "privsep bench: server-mode clients: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	return run(args, stdout, stderr)
}

// command is one subcommand: the dispatch, the help and the generators
// (completion scripts, the man page) all come from this list.
type command struct {
	name    string // as typed: "policy check" is two words
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands are the subcommands, in the order the help lists them.
func commands() []command {
	return []command{
		{"cat", "print files, opened through the opener", cat},
		{"policy check", "say whether a policy allows paths, and which rule decides", policyCmd},
		{"exec", "open files as root, drop privileges, run a command with them", execCmd},
		{"demo", "watch privilege separation work and fail safely, step by step", demoCmd},
		{"serve", "serve files to other processes on a unix socket", serveCmd},
		{"get", "print files, opened through a running privsep serve", getCmd},
		{"bench", "measure what the opener costs on this machine", benchCmd},
		{"completion", "print a shell completion script (bash, zsh, fish)", completionCmd},
		{"version", "print the version and VCS revision privsep was built from", versionCmd},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			return run(append(args[1:], "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	case "--version", "-version":
		return versionCmd(args[1:], stdout, stderr)
	}
	if args[0] == "policy" && (len(args) < 2 || (args[1] != "check" && args[1] != "--help" && args[1] != "-h" && args[1] != "-help")) {
		what := ""
		if len(args) > 1 {
			what = fmt.Sprintf(", not %q", args[1])
		}
		fmt.Fprintf(stderr, "privsep policy: want the subcommand check%s\nRun 'privsep policy check --help' for usage.\n", what)
		return exitUsage
	}
	for _, c := range commands() {
		first, _, _ := strings.Cut(c.name, " ")
		if args[0] == first {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "privsep: unknown command %q\nRun 'privsep --help' for usage.\n", args[0])
	return exitUsage
}
