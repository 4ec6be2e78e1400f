// Package testutil holds the helpers the test suites share: counting a
// process's descriptors, a log buffer safe for concurrent writers, and
// failing a test on an error. It is test-only code: it is imported only by
// _test.go files and by internal/hostile (itself test support), never by a
// package that ships in the binary.
//
// One home per helper: a test that wants one of these uses this package
// rather than writing its own copy.
package testutil
