//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

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
		switch {
		case errors.Is(err, syscall.ENOENT):
			fmt.Fprintf(stderr, "privsep get: no socket at %s: is privsep serve running, with --socket %s?\n", absolute(*socket), absolute(*socket))
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Fprintf(stderr, "privsep get: nothing answers on %s: is privsep serve running? (the file may be left from one that ended)\n", absolute(*socket))
		}
		return exitFail
	}
	files := fs.Args()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = absolute(f)
	}
	return printFiles(ctx, op, files, paths, stdout, stderr)
}
