package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/privsep-go/privsep/parent"
)

const getUsage = `Usage: privsep get --socket PATH FILE...

Open each FILE through a running server (privsep serve) listening on the
unix socket PATH and copy it to standard output, in order, like cat(1).
What may be opened is the server's policy for this process's uid and
primary group; the server decides from the kernel's view of the connection.

A FILE that cannot be opened is reported as "privsep: open FILE: REASON"
and the others are still printed. A server that refuses the connection
says why on standard error.

Exit status: 0 if every FILE was printed, 1 if any failed, the server
refused the connection or could not be reached, 2 on a usage error.

Options:
`

func getCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("get", getUsage, stdout, stderr)
	socket := fs.String("socket", "", "the server's unix socket `PATH` (required)")
	if ok, code := parse(args); !ok {
		return code
	}
	if *socket == "" {
		fmt.Fprintln(stderr, "privsep get: no --socket PATH given (see privsep get --help)")
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "privsep get: no FILE given (see privsep get --help)")
		return exitUsage
	}
	ctx := context.Background()
	op, err := parent.Dial(ctx, absolute(*socket))
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFail
	}
	status := exitOK
	files := fs.Args()
	for _, f := range files {
		err := copyFile(ctx, op, absolute(f), stdout)
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
			fmt.Fprintf(stderr, "privsep: open %s: %v\n", f, ee)
		case errors.As(err, &pe):
			fmt.Fprintf(stderr, "privsep: %s %s: %v\n", pe.Op, f, pe.Err)
			continue
		default:
			fmt.Fprintf(stderr, "privsep: %s: %v\n", f, err)
			continue
		}
		break // no output, or no server: nothing more can be printed
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
