//go:build !linux

package parent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/policy"
	"github.com/privsep-go/privsep/protocol"
)

// The opener and the sandbox calls need Linux. On other systems the package
// keeps its exported API, so that a cross-platform program embedding the
// library builds, and every call that would start, reach or use an opener,
// or restrict the process, returns an error matching errors.ErrUnsupported
// that names the platform. Loading and checking policies (PolicySource,
// LoadPolicy) is pure and works everywhere. The declarations mirror
// the Linux files; the build matrix in .ci/run compiles the CLI against
// both.

// errUnsupported says that op needs Linux, naming this platform.
func errUnsupported(op string) error {
	return fmt.Errorf("privsep: %s: the opener needs Linux; this is %s/%s: %w",
		op, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Defaults for Config.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

// Config says how to start the opener (see start.go for each field).
type Config struct {
	Rules          []string
	Listen         []string
	Policy         *policy.Policy
	Logger         hclog.Logger
	SlogHandler    slog.Handler
	Executable     string
	StartTimeout   time.Duration
	ChildStderr    *os.File
	DisableOpenat2 bool
	Broker         bool
	BrokerOnly     bool
	CloseTimeout   time.Duration
}

// Opener is a running opener. None exists on this system: Start, Dial and
// Inherited always fail, and the methods of a zero Opener fail the same
// way.
type Opener struct{}

// Start fails with an error matching errors.ErrUnsupported.
func Start(ctx context.Context, cfg Config) (*Opener, error) {
	return nil, errUnsupported("start the opener")
}

// Dial fails with an error matching errors.ErrUnsupported.
func Dial(ctx context.Context, path string) (*Opener, error) {
	return nil, errUnsupported("dial " + path)
}

// The environment variables through which privsep exec --keep-opener
// names an inherited opener.
const (
	OpenerFDEnv  = "PRIVSEP_OPENER_FD"
	OpenerPIDEnv = "PRIVSEP_OPENER_PID"
)

// ErrNoInheritedOpener is returned by Inherited on Linux when the
// environment names no opener.
var ErrNoInheritedOpener = errors.New("privsep: no inherited opener (" + OpenerFDEnv + " is not set)")

// Inherited fails with an error matching errors.ErrUnsupported.
func Inherited(log hclog.Logger) (*Opener, error) {
	return nil, errUnsupported("inherit an opener")
}

// PID returns 0: there is no opener process.
func (o *Opener) PID() int { return 0 }

// Openat2 reports false.
func (o *Opener) Openat2() bool { return false }

// File fails with an error matching errors.ErrUnsupported.
func (o *Opener) File() (*os.File, error) { return nil, errUnsupported("opener socket") }

// Done returns a closed channel: there is no opener to wait for.
func (o *Opener) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Err returns an error matching errors.ErrUnsupported.
func (o *Opener) Err() error { return errUnsupported("opener") }

// Close does nothing and returns nil.
func (o *Opener) Close() error { return nil }

// Open fails with an error matching errors.ErrUnsupported.
func (o *Opener) Open(ctx context.Context, path string, flag int, perm fs.FileMode) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: errUnsupported("open")}
}

// OpenBatch fails with an error matching errors.ErrUnsupported.
func (o *Opener) OpenBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	return nil, errUnsupported("open")
}

// FS returns a file system whose every call fails with an error matching
// errors.ErrUnsupported.
func (o *Opener) FS(root string) fs.FS { return unsupportedFS{} }

type unsupportedFS struct{}

func (unsupportedFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errUnsupported("open")}
}

// Listen fails with an error matching errors.ErrUnsupported.
func (o *Opener) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	return nil, errUnsupported("listen on " + network + ":" + addr)
}

// ListenPacket fails with an error matching errors.ErrUnsupported.
func (o *Opener) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	return nil, errUnsupported("listen on " + network + ":" + addr)
}

// ListenFile fails with an error matching errors.ErrUnsupported.
func (o *Opener) ListenFile(ctx context.Context, network, addr string) (*os.File, error) {
	return nil, errUnsupported("listen on " + network + ":" + addr)
}

// ConnRefusedError reports that a server refused a connection in the
// handshake. Dial never gets that far here; the type exists for programs
// that test for it.
type ConnRefusedError struct {
	Reason protocol.Reason
	Errno  syscall.Errno
}

func (e *ConnRefusedError) Error() string {
	return "the server refused this connection: " + e.Reason.String()
}

// Unwrap returns the errno the server sent.
func (e *ConnRefusedError) Unwrap() error { return e.Errno }

// Is makes a refusal of who we are match ErrDenied and fs.ErrPermission.
func (e *ConnRefusedError) Is(target error) bool {
	return e.Reason == protocol.ReasonDenied && (target == ErrDenied || target == fs.ErrPermission)
}

// LookupCredential fails with an error matching errors.ErrUnsupported:
// DropPrivileges, its only use, cannot run here.
func LookupCredential(userName, groupName string) (Credential, error) {
	return Credential{}, errUnsupported("look up credential")
}

// DropPrivileges fails with an error matching errors.ErrUnsupported.
func DropPrivileges(c Credential) error { return errUnsupported("drop privileges") }

// ErrRegainedRoot is returned on Linux when setuid(0) still succeeds after
// dropping privileges.
var ErrRegainedRoot = errors.New("privsep: privileges were dropped but setuid(0) still succeeds")

// SetNoNewPrivs fails with an error matching errors.ErrUnsupported.
func SetNoNewPrivs() (Coverage, error) { return 0, errUnsupported("set no_new_privs") }

// TCPRestrictable is false: there is no Landlock here.
func TCPRestrictable() bool { return false }

// Landlock fails with an error matching errors.ErrUnsupported, also with
// BestEffort: a restriction that cannot be made is never a success.
func Landlock(cfg LandlockConfig) (LandlockResult, error) {
	return LandlockResult{}, errUnsupported("landlock")
}

// Sandbox fails with an error matching errors.ErrUnsupported.
func Sandbox(cfg SandboxConfig) (SandboxResult, error) {
	return SandboxResult{}, errUnsupported("sandbox")
}

// ReadDir fails with an error matching errors.ErrUnsupported.
func (o *Opener) ReadDir(ctx context.Context, path string) ([]DirEntry, error) {
	return nil, errUnsupported("readdir")
}
