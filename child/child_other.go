//go:build !linux

package child

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// The opener needs Linux (openat2 or the O_PATH walk, Landlock, pidfds,
// SOCK_SEQPACKET with SCM_RIGHTS). On other systems the package keeps its
// exported API, so that programs embedding the library build for every
// platform, and every call that would serve returns an error matching
// errors.ErrUnsupported. The declarations mirror the Linux files (serve.go,
// server.go); the build matrix in .ci/run compiles the CLI against both.

func errUnsupported(op string) error {
	return fmt.Errorf("privsep: %s: the opener needs Linux; this is %s/%s: %w",
		op, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Init does nothing: package parent never starts an opener here, so this
// process is not one.
func Init() {}

// IsOpener reports false: no opener runs on this system.
func IsOpener() bool { return false }

// Main reports that the opener cannot run here and returns
// protocol.ExitUsage.
func Main(fdArg string) int {
	fmt.Fprintln(os.Stderr, errUnsupported("opener"))
	return protocol.ExitUsage
}

// DefaultWorkers is how many requests the opener serves at once.
const DefaultWorkers = 8

// StallAfter is how long a request may take before the worker serving it
// hands the receiving role to another worker.
const StallAfter = time.Millisecond

// Options tune the opener.
type Options struct {
	// Workers is the number of requests served concurrently; 0 means
	// DefaultWorkers.
	Workers int
}

// Defaults for ServerConfig.
const (
	DefaultMaxClients      = 256
	DefaultWorkersPerConn  = 2
	DefaultShutdownTimeout = 5 * time.Second
	DefaultSendTimeout     = 10 * time.Second
	DefaultHelloTimeout    = 10 * time.Second
)

// ServerConfig says how Serve serves (see server.go for each field).
type ServerConfig struct {
	Policies             *policy.ScopedPolicy
	AllowUIDs, AllowGIDs []uint32
	MaxClients           int
	WorkersPerConn       int
	Logger               hclog.Logger
	HelloTimeout         time.Duration
	SendTimeout          time.Duration
	ShutdownTimeout      time.Duration
}

// Peer is what the kernel says about a client's end of a connection.
type Peer struct {
	UID, GID uint32
	PID      int32
	PIDFD    bool
}

// Serve fails with an error matching errors.ErrUnsupported, and closes ln
// as it promises on Linux.
func Serve(ctx context.Context, ln *net.UnixListener, cfg ServerConfig) error {
	if ln != nil {
		ln.Close()
	}
	return errUnsupported("serve")
}

// Socket is a server's listening socket file, made by ListenSocket.
type Socket struct {
	*net.UnixListener
	Path string
}

// ListenSocket fails with an error matching errors.ErrUnsupported.
func ListenSocket(path string, mode os.FileMode, gid int) (*Socket, error) {
	return nil, &os.PathError{Op: "listen", Path: path, Err: errUnsupported("listen")}
}

// Remove does nothing: ListenSocket never made a file here.
func (s *Socket) Remove() error { return nil }
