//go:build !linux

package parent

import (
	"context"
	"io/fs"
	"net"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/internal/server"
)

// The opener and the sandbox calls need Linux. On other systems the package
// keeps its exported API, so that a cross-platform program embedding the
// library builds, and every call that would start, reach or use an opener,
// or restrict the process, returns an error matching errors.ErrUnsupported
// that names the platform: server.Unsupported's, which the opener's own
// entry points return here too. Loading and checking policies
// (PolicySource, LoadPolicy) is pure and works everywhere. What is the same
// on every system (Config, the error types, the request and result types)
// is declared once in the untagged files; the stubs here mirror the Linux
// files, and the build matrix in .ci/run compiles the CLI against both.

// Opener is a running opener. None exists on this system: Start, Dial and
// Inherited always fail, and the methods of a zero Opener fail the same
// way.
type Opener struct{}

// Start fails with an error matching errors.ErrUnsupported.
func Start(ctx context.Context, cfg Config) (*Opener, error) {
	return nil, server.Unsupported("start the opener")
}

// Dial fails with an error matching errors.ErrUnsupported.
func Dial(ctx context.Context, path string) (*Opener, error) {
	return nil, server.Unsupported("dial " + path)
}

// Inherited fails with an error matching errors.ErrUnsupported.
func Inherited(log hclog.Logger) (*Opener, error) {
	return nil, server.Unsupported("inherit an opener")
}

// PID returns 0: there is no opener process.
func (o *Opener) PID() int { return 0 }

// Openat2 reports false.
func (o *Opener) Openat2() bool { return false }

// File fails with an error matching errors.ErrUnsupported.
func (o *Opener) File() (*os.File, error) { return nil, server.Unsupported("opener socket") }

// Done returns a closed channel: there is no opener to wait for.
func (o *Opener) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Err returns an error matching errors.ErrUnsupported.
func (o *Opener) Err() error { return server.Unsupported("opener") }

// Close does nothing and returns nil.
func (o *Opener) Close() error { return nil }

// Open fails with an error matching errors.ErrUnsupported.
func (o *Opener) Open(ctx context.Context, path string, flag int, perm fs.FileMode) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: server.Unsupported("open")}
}

// OpenBatch fails with an error matching errors.ErrUnsupported.
func (o *Opener) OpenBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	return nil, server.Unsupported("open")
}

// FS returns a file system whose every call fails with an error matching
// errors.ErrUnsupported.
func (o *Opener) FS(root string) fs.FS { return unsupportedFS{} }

type unsupportedFS struct{}

func (unsupportedFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: server.Unsupported("open")}
}

// Listen fails with an error matching errors.ErrUnsupported.
func (o *Opener) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	return nil, server.Unsupported("listen on " + network + ":" + addr)
}

// ListenPacket fails with an error matching errors.ErrUnsupported.
func (o *Opener) ListenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	return nil, server.Unsupported("listen on " + network + ":" + addr)
}

// ListenFile fails with an error matching errors.ErrUnsupported.
func (o *Opener) ListenFile(ctx context.Context, network, addr string) (*os.File, error) {
	return nil, server.Unsupported("listen on " + network + ":" + addr)
}

// Error names only the reason: Dial never gets as far as a refusal here.
func (e *ConnRefusedError) Error() string {
	return "the server refused this connection: " + e.Reason.String()
}

// LookupCredential fails with an error matching errors.ErrUnsupported:
// DropPrivileges, its only use, cannot run here.
func LookupCredential(userName, groupName string) (Credential, error) {
	return Credential{}, server.Unsupported("look up credential")
}

// DropPrivileges fails with an error matching errors.ErrUnsupported.
func DropPrivileges(c Credential) error { return server.Unsupported("drop privileges") }

// SetNoNewPrivs fails with an error matching errors.ErrUnsupported.
func SetNoNewPrivs() (Coverage, error) { return 0, server.Unsupported("set no_new_privs") }

// TCPRestrictable is false: there is no Landlock here.
func TCPRestrictable() bool { return false }

// Landlock fails with an error matching errors.ErrUnsupported, also with
// BestEffort: a restriction that cannot be made is never a success.
func Landlock(cfg LandlockConfig) (LandlockResult, error) {
	return LandlockResult{}, server.Unsupported("landlock")
}

// Sandbox fails with an error matching errors.ErrUnsupported.
func Sandbox(cfg SandboxConfig) (SandboxResult, error) {
	return SandboxResult{}, server.Unsupported("sandbox")
}

// ReadDir fails with an error matching errors.ErrUnsupported.
func (o *Opener) ReadDir(ctx context.Context, path string) ([]DirEntry, error) {
	return nil, server.Unsupported("readdir")
}
