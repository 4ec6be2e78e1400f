//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/parent"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// errNotActivated says that systemd passed no socket.
var errNotActivated = errors.New("not socket-activated")

// activatedListener returns the listening socket systemd passed
// (LISTEN_FDS=1 and LISTEN_PID naming this process: descriptor 3), or
// errNotActivated. The variables are removed from the environment so that
// nothing this process starts takes them for its own. A descriptor that is
// not a listening SOCK_SEQPACKET unix socket is an error.
func activatedListener() (*net.UnixListener, error) {
	pidStr, okPID := os.LookupEnv("LISTEN_PID")
	nStr, okN := os.LookupEnv("LISTEN_FDS")
	if !okPID && !okN {
		return nil, errNotActivated
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid, err := strconv.Atoi(pidStr); err != nil || pid != os.Getpid() {
		// Meant for another process (a parent that passed its
		// environment on): not ours to take.
		return nil, errNotActivated
	}
	if n, err := strconv.Atoi(nStr); err != nil || n != 1 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q: want exactly one socket (one ListenSequentialPacket= in the .socket unit)", nStr)
	}
	fd := listenFDsStart
	what := func() string {
		dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		acc, err3 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		switch {
		case err1 != nil || err2 != nil || err3 != nil:
			return "not a socket"
		case dom != unix.AF_UNIX:
			return "not a unix socket"
		case typ != unix.SOCK_SEQPACKET:
			return "not a SOCK_SEQPACKET socket (use ListenSequentialPacket= in the .socket unit)"
		case acc != 1:
			return "not listening"
		}
		return ""
	}()
	if what != "" {
		return nil, fmt.Errorf("socket activation: descriptor %d is %s", fd, what)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "systemd socket")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("socket activation: descriptor %d: %w", fd, err)
	}
	return ln.(*net.UnixListener), nil
}

// notifyServeSignals starts catching the signals serveSignals handles. It
// is called before the server says it listens, so that a SIGHUP sent as
// soon as it does is a reload, not the default exit.
func notifyServeSignals() chan os.Signal {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return sigs
}

// serveSignals runs until ctx ends: on SIGTERM or SIGINT it calls stop; on
// SIGHUP it re-reads the policy and sends it to the server, which keeps
// the old one if the new one is bad. The caller stops sigs once the
// server has drained, so that a second SIGTERM does not cut the drain short.
func (f *serveFlags) serveSignals(ctx context.Context, sigs chan os.Signal, stop context.CancelFunc, reload chan<- child.ServerReload, log hclog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Info("stopping", "signal", sig.String())
				stop()
				return
			}
			log.Info("SIGHUP: reloading the policy", "files", f.pf.files)
			pols, err := parent.PolicySource{Files: f.pf.files, Rules: f.pf.rules, Listen: f.pf.listens}.ServerPolicy()
			if err != nil {
				log.Error("reload failed: keeping the old policy", "error", err)
				continue
			}
			select {
			case reload <- child.ServerReload{Policies: pols}:
			case <-ctx.Done():
				return
			}
		}
	}
}
