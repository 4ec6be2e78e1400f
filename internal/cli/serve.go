//go:build linux

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/ids"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

const serveUsage = `Usage: privsep serve --socket PATH [--allow RULE]... [--policy FILE]...
                     [--allow-uid UID|USER]... [--allow-gid GID|GROUP]...
                     [--socket-mode 0660] [--socket-group GROUP] [--max-clients N]
                     [--max-sessions-per-uid N] [--idle-timeout D]
                     [--log-level LEVEL] [--log-json] [--check]

Serve files to unrelated processes on a unix socket (SOCK_SEQPACKET), as a
long-running opener. Clients connect with "privsep get", parent.Dial or any
program that speaks PROTOCOL.md.

The policy is the server's, fixed at start: clients send none. Policy files
may scope rules to clients with sections: "[uid USER]" and "[gid GROUP]"
(the client's primary group) apply the rules after them to those clients,
"[all]" to every client again; rules before any section and --allow rules
apply to every client.

Who may connect is decided from the kernel's view of the connection
(SO_PEERCRED), never from what a client says: a client whose uid is listed
with --allow-uid or whose primary gid is listed with --allow-gid. With
neither, only privsep's own uid may. Anyone else gets a refusal and is
disconnected, and the refusal is logged with its uid, gid and pid.

No client can starve the others: one uid has at most --max-sessions-per-uid
sessions at once (a connection beyond it is refused, saying which limit), a
session with no request for --idle-timeout is closed, and a client that sends
no hello within 10 seconds is disconnected. --max-clients bounds all sessions
together.

The socket file is created with exactly --socket-mode and --socket-group.
PATH must not exist, or be a stale socket (one nobody answers on), which is
replaced. The file is removed when privsep serve ends.

SIGTERM or SIGINT: stop accepting, let every session answer the requests it
already received (at most 5 seconds), remove the socket and exit 0.

SIGHUP: read the --policy files again. Sessions that start from then on get
the new policy; sessions in progress keep theirs. A bad new policy is
logged (naming the file and line) and the old one kept.

Socket activation: started by systemd with one socket (LISTEN_FDS=1, a
ListenSequentialPacket= .socket unit), privsep serve serves on it, without
--socket; systemd owns the socket file (see examples/systemd).

Exit status: 0 after SIGTERM or SIGINT, 1 if serving fails, 2 on a usage
error (a bad rule or policy file included).

Options:
`

// serveFlags are the options of privsep serve.
type serveFlags struct {
	pf                    policyFlags
	socket, mode, group   string
	uids, gids            []uint32
	maxClients, maxPerUID int
	idle                  time.Duration
	level                 string
	logJSON               bool
	activated             bool // systemd passed the listening socket
	checkOnly             bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.pf.register(fs)
	fs.StringVar(&f.socket, "socket", "", "listen on the unix socket `PATH` (required)")
	fs.Func("allow-uid", "let clients with `UID|USER` connect; repeatable", repeated(&f.uids, ids.UID))
	fs.Func("allow-gid", "let clients whose primary group is `GID|GROUP` connect; repeatable", repeated(&f.gids, ids.GID))
	fs.StringVar(&f.mode, "socket-mode", "0660", "permissions of the socket file, in `OCTAL`")
	fs.StringVar(&f.group, "socket-group", "", "give the socket file the group `GROUP` (name or number)")
	fs.IntVar(&f.maxClients, "max-clients", child.DefaultMaxClients, "serve at most `N` clients at once")
	fs.IntVar(&f.maxPerUID, "max-sessions-per-uid", child.DefaultMaxSessionsPerUID, "serve at most `N` sessions of one uid at once")
	fs.DurationVar(&f.idle, "idle-timeout", child.DefaultIdleTimeout, "close a session that has had no request for `D` (such as 30s or 5m)")
	fs.StringVar(&f.level, "log-level", "info", "log `LEVEL`: trace, debug, info, warn, error, off")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.BoolVar(&f.checkOnly, "check", false, "check the options, policies and rule directories, print what is wrong, and exit (0: all good, 2: not)")
}

// check returns the socket file's permissions and group (-1: unchanged)
// and the log level, or what is wrong with the options.
func (f *serveFlags) check(fs *flag.FlagSet) (perm uint64, gid int, lvl hclog.Level, err error) {
	if fs.NArg() > 0 {
		return 0, 0, 0, fmt.Errorf("unexpected argument %q (see privsep serve --help)", fs.Arg(0))
	}
	if f.socket == "" && !f.activated {
		return 0, 0, 0, errors.New("no --socket PATH given (see privsep serve --help)")
	}
	if f.socket != "" && f.activated {
		return 0, 0, 0, errors.New("--socket given, and systemd passed a socket (LISTEN_FDS): give one")
	}
	perm, err = strconv.ParseUint(f.mode, 8, 32)
	if err != nil || perm&^0o777 != 0 {
		return 0, 0, 0, fmt.Errorf("--socket-mode %q: want octal permissions, such as 0660", f.mode)
	}
	gid = -1
	if f.group != "" {
		g, err := ids.GID(f.group)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("--socket-group: %w", err)
		}
		gid = int(g)
	}
	switch {
	case f.maxClients <= 0:
		return 0, 0, 0, fmt.Errorf("--max-clients %d: want at least 1", f.maxClients)
	case f.maxPerUID <= 0:
		return 0, 0, 0, fmt.Errorf("--max-sessions-per-uid %d: want at least 1", f.maxPerUID)
	case f.idle <= 0:
		return 0, 0, 0, fmt.Errorf("--idle-timeout %v: want a positive duration, such as 5m", f.idle)
	}
	lvl = hclog.LevelFromString(f.level)
	if lvl == hclog.NoLevel {
		return 0, 0, 0, fmt.Errorf("unknown log level %q", f.level)
	}
	return perm, gid, lvl, nil
}

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs, parse := flagSet("serve", serveUsage, stdout, stderr)
	var f serveFlags
	f.register(fs)
	if ok, code := parse(args); !ok {
		return code
	}
	actLn, err := activatedListener()
	switch {
	case err == nil:
		f.activated = true
		defer actLn.Close()
	case !errors.Is(err, errNotActivated):
		fmt.Fprintf(stderr, "privsep serve: %v\n", err)
		return exitFail
	}
	perm, gid, lvl, err := f.check(fs)
	var pols *policy.ScopedPolicy
	if err == nil {
		pols, err = parent.PolicySource{Files: f.pf.files, Rules: f.pf.rules, Listen: f.pf.listens}.ServerPolicy()
	}
	if err != nil {
		fmt.Fprintf(stderr, "privsep serve: %v\n", err)
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "privsep", Level: lvl, Output: stderr, JSONFormat: f.logJSON})
	for _, w := range socketWarnings(absolute(f.socket), perm, f.activated) {
		fmt.Fprintf(stderr, "privsep serve: warning: %s\n", w)
	}
	if f.checkOnly {
		// Everything Serve checks before it accepts, without a socket:
		// the socket's directory must be there for ListenSocket.
		if fi, err := os.Stat(filepath.Dir(absolute(f.socket))); err != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "privsep serve: --socket %s: its directory cannot be used: %v\n", f.socket, err)
			return exitUsage
		}
		if err := child.CheckServer(child.ServerConfig{Policies: pols, Logger: log}); err != nil {
			fmt.Fprintf(stderr, "privsep serve: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "privsep serve: configuration OK (%d policies)\n", len(pols.Policies()))
		return exitOK
	}
	var sock *child.Socket
	if f.activated {
		// systemd made the socket file and removes it: ours is only the
		// listener.
		sock = &child.Socket{UnixListener: actLn, Path: actLn.Addr().String() + " (from systemd)"}
	} else {
		sock, err = child.ListenSocket(absolute(f.socket), os.FileMode(perm), gid)
	}
	if err != nil {
		fmt.Fprintf(stderr, "privsep serve: %v\n", err)
		return exitFail
	}
	if err := f.serve(sock, perm, pols, log); err != nil {
		fmt.Fprintf(stderr, "privsep serve: %v\n", err)
		var me *child.MissingDirError
		if errors.As(err, &me) {
			return exitUsage // the policy names a directory that is not there
		}
		return exitFail
	}
	log.Info("stopped")
	return exitOK
}

// serve serves on sock until SIGTERM or SIGINT, reloading the policy on
// SIGHUP, and removes its file.
func (f *serveFlags) serve(sock *child.Socket, perm uint64, pols *policy.ScopedPolicy, log hclog.Logger) error {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	reload := make(chan child.ServerReload)
	sigs := notifyServeSignals()
	defer signal.Stop(sigs)
	sigDone := make(chan struct{})
	go func() {
		defer close(sigDone)
		f.serveSignals(ctx, sigs, stop, reload, log)
	}()
	defer func() { stop(); <-sigDone }()
	who := []any{"allow_uids", f.uids, "allow_gids", f.gids}
	if len(f.uids) == 0 && len(f.gids) == 0 {
		who = []any{"allow_uids", []int{os.Geteuid()}}
	}
	log.Info("listening", append([]any{"socket", sock.Path, "mode", fmt.Sprintf("%#o", perm), "pid", os.Getpid(), "max_clients", f.maxClients,
		"max_sessions_per_uid", f.maxPerUID, "idle_timeout", f.idle}, who...)...)
	err := child.Serve(ctx, sock.UnixListener, child.ServerConfig{
		Policies:          pols,
		Reload:            reload,
		AllowUIDs:         f.uids,
		AllowGIDs:         f.gids,
		MaxClients:        f.maxClients,
		MaxSessionsPerUID: f.maxPerUID,
		IdleTimeout:       f.idle,
		Logger:            log,
	})
	if f.activated {
		return err
	}
	if rerr := sock.Remove(); rerr != nil {
		log.Warn("cannot remove the socket file", "error", rerr)
	}
	return err
}

// socketWarnings says what is risky about serving on path with permissions
// perm: a mode that lets others than the owner and group connect, and a
// directory that anyone may write in (whoever can write there can remove
// the socket and put one of their own in its place, unless the directory
// is sticky and then only the owner of the file can).
func socketWarnings(path string, perm uint64, activated bool) []string {
	if activated {
		return nil // systemd made the socket: its unit decides mode and place
	}
	var ws []string
	if perm&^0o660 != 0 {
		ws = append(ws, fmt.Sprintf("--socket-mode %#o is wider than 0660: users outside the socket's owner and group can connect (the server still checks --allow-uid/--allow-gid)", perm))
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o002 != 0 {
		ws = append(ws, fmt.Sprintf("the socket's directory %s is world-writable: other users can create files beside the socket; prefer a directory only the server's user can write, such as /run/privsep", dir))
	}
	return ws
}
