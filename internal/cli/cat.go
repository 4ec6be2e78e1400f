//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

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

func cat(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("cat", catUsage, stdout, stderr)
	var pf policyFlags
	pf.register(fs)
	level := fs.String("log-level", "error", "log `LEVEL` of both sides: trace, debug, info, warn, error, off")
	if ok, code := parse(args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "privsep cat: no FILE given (see privsep cat --help)")
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
	if pf.empty() {
		// The default policy: exactly the files asked for. A path that is
		// not a valid exact-file rule gets no rule and is refused when
		// opened, with the same message as any other bad request.
		for _, p := range paths {
			if r, err := policy.ParseRule(p); err == nil && !r.Tree && !contains(pf.rules, p) {
				pf.rules = append(pf.rules, p)
			}
		}
	}
	pol, ok := pf.load("cat", stderr)
	if !ok {
		return exitUsage
	}

	ctx := context.Background()
	op, err := parent.Start(ctx, parent.Config{Policy: pol, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		var de *parent.RuleDirError
		if errors.As(err, &de) {
			return exitUsage // the policy names a directory that is not there
		}
		return exitFail
	}
	return printFiles(ctx, op, files, paths, stdout, stderr)
}

// printFiles copies each file to stdout through op, in order, as cat does,
// reports each failure as "privsep: OP FILE: REASON" under the name the user
// gave (files[i]; paths[i] is what is opened), stops at the first error
// that leaves nothing more to print (the output or the opener failed),
// closes op and returns the exit status: 0, or 1 if anything failed.
func printFiles(ctx context.Context, op *parent.Opener, files, paths []string, stdout, stderr io.Writer) int {
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
	var re *parent.RefusedError
	if errors.As(err, &re) && re.Reason == protocol.ReasonDirectory {
		// A directory under a rule without dirs=yes: the opener keeps its
		// descriptor, but the answer to printing it is the same.
		return &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// A directory is a valid thing to open under dirs=yes, but not to
	// print; say so as read(2) would.
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
