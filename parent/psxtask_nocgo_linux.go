//go:build !cgo

package parent

// psxTaskDir is empty without cgo: Go's syscall.AllThreadsSyscall reaches
// the threads without listing them (see psxtask_cgo_linux.go).
func psxTaskDir() string { return "" }
