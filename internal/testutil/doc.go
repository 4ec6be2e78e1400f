// Package testutil holds the helpers the test suites share: counting a
// process's descriptors, a log buffer safe for concurrent writers, failing
// a test on an error, root-only and world-traversable directories,
// connecting to a unix socket as another uid (DialAs), loopback listeners,
// a copy of the test binary, a timed open loop and the Landlock ABI. It is test-only code: it is imported only by
// _test.go files and by internal/hostile (itself test support), never by a
// package that ships in the binary.
//
// One home per helper: a test that wants one of these uses this package
// rather than writing its own copy.
package testutil
