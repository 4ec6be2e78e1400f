// Command privsep opens files through a privilege-separated opener process.
//
// The opener is this same binary, re-executed as a child; it checks every
// request against a policy fixed at start and hands back open descriptors.
// Run "privsep help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/child"
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
  privsep cat [--allow RULE]... [--log-level LEVEL] FILE...
  privsep help [COMMAND]

Commands:
  cat     print files, opened through the opener
  help    show help for a command

Rules are [MODES:]PATH: PATH allows exactly that file, PATH/ anything
beneath that directory. MODES is "r" (read), the only mode so far.

Run "privsep COMMAND --help" for a command's options.
`

const catUsage = `Usage: privsep cat [--allow RULE]... [--log-level LEVEL] FILE...

Start an opener with the given rules, open each FILE through it and copy it
to standard output, in order, like cat(1).

With no --allow, the policy allows exactly the FILE arguments. A FILE that
cannot be opened is reported as "privsep: open FILE: REASON" (a policy
denial says so) and the others are still printed.

Exit status: 0 if every FILE was printed, 1 if any failed or the opener
died, 2 on a usage error.

Options:
`

func main() {
	child.Init() // becomes the opener when started as one; never returns then
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
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "privsep: unknown command %q\n\n%s", args[0], mainUsage)
	return exitUsage
}

// ruleList collects repeated --allow flags.
type ruleList []string

func (r *ruleList) String() string { return strings.Join(*r, ",") }
func (r *ruleList) Set(s string) error {
	if _, err := policy.ParseRule(s); err != nil {
		return err
	}
	*r = append(*r, s)
	return nil
}

func cat(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rules ruleList
	fs.Var(&rules, "allow", "allow `RULE` ([MODES:]PATH; PATH/ for a tree); repeatable")
	level := fs.String("log-level", "error", "log `LEVEL` of both sides: trace, debug, info, warn, error, off")
	usage := func(w io.Writer) {
		fmt.Fprint(w, catUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	// Parse reports a bad flag on stderr itself; the usage is ours to print,
	// on stdout when it was asked for and on stderr after an error.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		usage(stderr)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "privsep cat: no FILE given")
		usage(stderr)
		return exitUsage
	}
	lvl := hclog.LevelFromString(*level)
	if lvl == hclog.NoLevel {
		fmt.Fprintf(stderr, "privsep cat: unknown log level %q\n", *level)
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "privsep", Level: lvl, Output: stderr})

	files := fs.Args()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = absolute(f)
	}
	if len(rules) == 0 {
		// The default policy: exactly the files asked for. A path that is
		// not a valid exact-file rule gets no rule and is refused when
		// opened, with the same message as any other bad request.
		for _, p := range paths {
			if r, err := policy.ParseRule(p); err == nil && !r.Tree && !contains(rules, p) {
				rules = append(rules, p)
			}
		}
	}
	if _, err := policy.Parse(rules); err != nil {
		fmt.Fprintf(stderr, "privsep cat: %v\n", err)
		return exitUsage
	}

	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Rules: rules, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFail
	}
	status := exitOK
	for i, p := range paths {
		err := copyFile(ctx, op, p, stdout)
		if err == nil {
			continue
		}
		status = exitFail
		var pe *os.PathError
		var we *writeError
		var ee *parent.ExitError
		switch {
		case errors.As(err, &we):
			fmt.Fprintf(stderr, "privsep: write standard output: %v\n", we.err)
		case errors.As(err, &ee):
			fmt.Fprintf(stderr, "privsep: open %s: %v\n", files[i], ee)
		case errors.As(err, &pe):
			fmt.Fprintf(stderr, "privsep: %s %s: %v\n", pe.Op, files[i], pe.Err)
			continue
		default:
			fmt.Fprintf(stderr, "privsep: %s: %v\n", files[i], err)
			continue
		}
		break // no output, or no opener: nothing more can be printed
	}
	if err := op.Close(); err != nil {
		var ee *parent.ExitError
		if !errors.As(err, &ee) || status == exitOK {
			fmt.Fprintf(stderr, "privsep: %v\n", err)
		}
		status = exitFail
	}
	return status
}

// writeError marks a failure to write the output, as opposed to reading a
// file: the former ends the command.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }

func copyFile(ctx context.Context, op *parent.Opener, path string, w io.Writer) error {
	f, err := op.Open(ctx, path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// A directory is a valid thing to open (a tree rule allows listing
	// it), but not to print; say so as read(2) would.
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	if _, err := io.Copy(w, f); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "read" && pe.Path == path {
			return err
		}
		return &writeError{err: unwrapPath(err)}
	}
	return nil
}

// unwrapPath drops the *os.PathError around a write error, whose path names
// a file rather than the output.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// absolute makes a relative command-line path absolute against the working
// directory. It cleans away "." and doubled slashes, which do not change
// what a path names, but leaves a ".." in place: that is refused rather
// than silently resolved, as the opener refuses it.
func absolute(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p // refused later as not absolute
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return strings.TrimSuffix(wd, "/") + "/" + p
		}
	}
	return filepath.Join(wd, p)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
