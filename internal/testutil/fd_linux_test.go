//go:build linux

package testutil

import (
	"os"
	"testing"
)

// TestCountFDsSeesAnOpenFile: one more descriptor while a file is open, the
// same count again once it is closed, for this process by 0 and by pid.
func TestCountFDsSeesAnOpenFile(t *testing.T) {
	for _, pid := range []int{0, os.Getpid()} {
		before := FDs(t, pid)
		f, err := os.Open("/proc/self/status")
		Must(t, err)
		if got := FDs(t, pid); got != before+1 {
			t.Errorf("pid %d: %d descriptors with a file open, want %d; %s", pid, got, before+1, FDList(pid))
		}
		f.Close()
		if got, err := SettledFDs(pid, before); err != nil || got != before {
			t.Errorf("pid %d: %d, %v descriptors after the close, want %d", pid, got, err, before)
		}
	}
}
