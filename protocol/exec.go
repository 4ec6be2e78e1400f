package protocol

// How a parent starts the opener. The parent re-executes its own binary with
// argv = [OpenerArgv0, OpenerArg, FD], where FD is the decimal number of the
// opener's end of the socket pair, and with OpenerEnv() in the environment
// (OpenerEnvKey set to OpenerEnvValue). The
// child entry point (child.Init) acts only when both are present.
const (
	// OpenerArgv0 is argv[0] of the opener, so that ps shows what it is.
	OpenerArgv0 = "privsep-opener"
	// OpenerArg is argv[1] of the opener.
	OpenerArg = "-privsep-opener-fd"
	// OpenerEnvKey, set to OpenerEnvValue, marks the opener's environment.
	// A parent refuses to start an opener from a process that carries it:
	// that process is an opener whose program did not call the child entry
	// point, and starting another would recurse.
	OpenerEnvKey   = "PRIVSEP_OPENER"
	OpenerEnvValue = "1"
	// LogLevelEnv names the environment variable that carries the opener's
	// hclog level ("trace", "debug", "info", "warn", "error", "off").
	LogLevelEnv = "PRIVSEP_LOG_LEVEL"
)

// OpenerEnv is the opener's marker as an environment entry, "KEY=VALUE".
func OpenerEnv() string { return OpenerEnvKey + "=" + OpenerEnvValue }

// Exit statuses of the opener process.
const (
	ExitOK       = 0 // end of stream: the parent shut down its side or closed
	ExitInternal = 1 // an unexpected system call failure inside the opener
	ExitUsage    = 2 // bad invocation: argv, or the socket or its peer is not what it must be
	ExitProtocol = 3 // a protocol violation after which the stream cannot be trusted
)

// ExitStatusText describes an opener exit status.
func ExitStatusText(code int) string {
	switch code {
	case ExitOK:
		return "end of stream"
	case ExitInternal:
		return "internal error"
	case ExitUsage:
		return "bad invocation"
	case ExitProtocol:
		return "protocol violation"
	}
	return "unknown status"
}
