package main

// The exit statuses the CLI promises (privsep help, privsep exec --help),
// restated here: these tests run the built binary and check its contract,
// not the constants of internal/cli.
const (
	exitOK         = 0
	exitFail       = 1
	exitUsage      = 2
	exitExecFailed = 125
)
