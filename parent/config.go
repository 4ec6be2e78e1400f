package parent

import (
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/privsep-go/privsep/policy"
)

// Defaults for Config.
const (
	DefaultStartTimeout = 10 * time.Second
	// DefaultCloseTimeout bounds how long Close waits for the opener to
	// drain and exit before it kills it (for a connection from Dial: for
	// the calls in flight before it cuts the connection).
	DefaultCloseTimeout = 5 * time.Second
)

// Config says how to start the opener. On systems other than Linux, Start
// fails whatever it holds.
type Config struct {
	// Rules is the policy, one rule per entry in the command-line form
	// "[MODES:]PATH" (see policy.ParseRule). It is fixed for the life of
	// the opener. No rules means nothing can be opened.
	Rules []string

	// Listen adds listen rules, "NET:ADDR" each (see policy.ParseListen),
	// for Opener.Listen and ListenPacket.
	Listen []string

	// Policy, if not nil, is a compiled policy (from policy files, say)
	// used instead of Rules and Listen; setting both is an error.
	Policy *policy.Policy

	// Logger receives the opener's log lines under the sub-logger "child",
	// and the parent's own. The opener logs at this logger's level. Nil
	// discards everything.
	Logger hclog.Logger

	// SlogHandler, if not nil, receives the opener's log lines too, for
	// programs that log with log/slog: each with its level (hclog's trace
	// is slog.LevelDebug-4), message and fields as attributes, and the
	// attribute module=child. The opener then logs at the most verbose
	// level that Logger or SlogHandler wants. The parent's own lines go to
	// Logger only.
	SlogHandler slog.Handler

	// Executable is the program to start as the opener; it must call
	// child.Init at the top of main. Empty means "/proc/self/exe": this
	// very binary, even if the file on disk was replaced since.
	Executable string

	// StartTimeout bounds the wait for the opener's ready message, on top of
	// ctx. Zero means DefaultStartTimeout.
	StartTimeout time.Duration

	// ChildStderr, if not nil, receives the opener's JSON log lines as they
	// are, instead of a pipe that the parent reads and re-emits through
	// Logger. Use it when the opener must outlive this process's reading,
	// as privsep exec --keep-opener does; ExitError then has no log lines.
	ChildStderr *os.File

	// DisableOpenat2 makes the opener resolve paths with its
	// component-by-component fallback even where the kernel has openat2.
	// It exists for tests; the fallback is weaker (see package child).
	DisableOpenat2 bool

	// Broker lets the opener serve one seccomp listener, for [ExecConfig]
	// Broker: the opens of a program run with [Exec] are then brokered
	// (privsep exec --broker). Without it the opener refuses the listener.
	Broker bool

	// BrokerOnly, with Broker, makes the broker refuse (EACCES) every
	// open it does not serve instead of letting it go ahead, except reads
	// of world-readable files beneath the dynamic loader's directories
	// (privsep exec --broker-only). It is not confinement: see SECURITY.md.
	BrokerOnly bool

	// CloseTimeout bounds how long Close waits for the opener to answer
	// what it has and exit before Close kills it, as exec.Cmd.WaitDelay
	// does for a command's pipes. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// The environment variables through which a process that started an opener
// (privsep exec --keep-opener) tells the program it execs where the opener
// is: the descriptor number of the socket, and the opener's pid.
const (
	OpenerFDEnv  = "PRIVSEP_OPENER_FD"
	OpenerPIDEnv = "PRIVSEP_OPENER_PID"
)
