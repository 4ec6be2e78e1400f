//go:build !linux

package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime"
)

// The opener needs Linux. Elsewhere the CLI still builds, "privsep policy
// check" (pure) works, and every command that needs an opener says why it
// cannot run and exits with exitUnsupported.

// exitUnsupported is the status of a command that cannot run on this
// platform: distinct from a failure (1) and a usage error (2).
const exitUnsupported = 3

var errNeedsLinux = fmt.Errorf("the opener needs Linux; this is %s/%s: %w",
	runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

func unsupported(cmd string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "privsep %s: %v\n", cmd, errNeedsLinux)
	return exitUnsupported
}

func cat(args []string, stdout, stderr io.Writer) int      { return unsupported("cat", stderr) }
func execCmd(args []string, stdout, stderr io.Writer) int  { return unsupported("exec", stderr) }
func demoCmd(args []string, stdout, stderr io.Writer) int  { return unsupported("demo", stderr) }
func serveCmd(args []string, stdout, stderr io.Writer) int { return unsupported("serve", stderr) }
func getCmd(args []string, stdout, stderr io.Writer) int   { return unsupported("get", stderr) }
func benchCmd(args []string, stdout, stderr io.Writer) int { return unsupported("bench", stderr) }
