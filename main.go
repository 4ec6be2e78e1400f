// Command privsep opens files through a privilege-separated opener process.
//
// The opener is this same binary, re-executed as a child; it checks every
// request against a policy fixed at start and hands back open descriptors.
// Run "privsep help" for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/bench"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
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

const catUsage = `Usage: privsep cat [--allow RULE]... [--policy FILE]... [--log-level LEVEL] FILE...

Start an opener with the given rules, open each FILE through it and copy it
to standard output, in order, like cat(1).

With no --allow and no --policy, the policy allows exactly the FILE
arguments. A FILE that
cannot be opened is reported as "privsep: open FILE: REASON" (a policy
denial says so) and the others are still printed.

Exit status: 0 if every FILE was printed, 1 if any failed or the opener
died, 2 on a usage error (a bad rule or policy file included).

Options:
`

func main() {
	child.Init() // becomes the opener when started as one; never returns then
	// privsep bench times a bare re-exec of this binary, which exits here.
	bench.ExitIfBareStart()
	if len(os.Args) > 1 && os.Args[1] == execTrampolineArg {
		os.Exit(trampoline(os.Args[2:], os.Stderr)) // privsep exec's second half
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
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

// flagSet makes the flag set of a subcommand. Parse reports a bad flag on
// stderr itself; the usage is ours to print: on stdout when it was asked
// for, on stderr after an error.
func flagSet(name, usage string, stdout, stderr io.Writer) (*flag.FlagSet, func(args []string) (ok bool, code int)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	parse := func(args []string) (bool, int) {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(stdout)
				return false, exitOK
			}
			printUsage(stderr)
			return false, exitUsage
		}
		return true, 0
	}
	return fs, parse
}

// policyFlags are the flags that make a policy: --allow, --allow-listen
// and --policy.
type policyFlags struct {
	rules   []string
	listens []string
	files   []string
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.Func("allow", "allow `RULE`: [MODES:]PATH, PATH/ for a tree; repeatable", func(s string) error {
		if _, err := policy.ParseRule(s); err != nil {
			return err
		}
		p.rules = append(p.rules, s)
		return nil
	})
	fs.Func("allow-listen", "allow a listening socket on `NET:ADDR` (tcp::443, unix:/run/app.sock); repeatable", func(s string) error {
		if _, err := policy.ParseListen(s); err != nil {
			return err
		}
		p.listens = append(p.listens, s)
		return nil
	})
	fs.Func("policy", "read rules from policy `FILE`; repeatable", func(s string) error {
		p.files = append(p.files, s)
		return nil
	})
}

func (p *policyFlags) empty() bool {
	return len(p.rules) == 0 && len(p.listens) == 0 && len(p.files) == 0
}

// load compiles the policy; an error is a usage error, already printed as
// "FILE:LINE: what is wrong" (or the rule that is wrong).
func (p *policyFlags) load(cmd string, stderr io.Writer) (*policy.Policy, bool) {
	pol, err := parent.PolicySource{Files: p.files, Rules: p.rules, Listen: p.listens}.Policy()
	if err != nil {
		fmt.Fprintf(stderr, "privsep %s: %v\n", cmd, err)
		return nil, false
	}
	return pol, true
}
