//go:build !linux

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
)

// The opener needs Linux (openat2 or the O_PATH walk, Landlock, pidfds,
// SOCK_SEQPACKET with SCM_RIGHTS). Elsewhere the server's entry points keep
// their signatures, so that programs embedding the library build for every
// platform, and fail with an error matching errors.ErrUnsupported.

// Unsupported is the error every entry point of the opener returns on this
// system, for the operation op.
func Unsupported(op string) error {
	return fmt.Errorf("privsep: %s: the opener needs Linux; this is %s/%s: %w",
		op, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Serve fails with an error matching errors.ErrUnsupported, and closes ln
// as it promises on Linux.
func Serve(ctx context.Context, ln *net.UnixListener, cfg Config) error {
	if ln != nil {
		ln.Close()
	}
	return Unsupported("serve")
}

// ListenSocket fails with an error matching errors.ErrUnsupported.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	return nil, &os.PathError{Op: "listen", Path: path, Err: Unsupported("listen")}
}

// Remove does nothing: ListenSocket never made a file here.
func (s *Socket) Remove() error { return nil }

// Check fails with an error matching errors.ErrUnsupported.
func Check(cfg Config) error { return Unsupported("serve") }
