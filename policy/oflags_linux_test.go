//go:build linux

package policy

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Each line is a compile-time assertion that policy's Linux flag value is
// x/sys/unix's for the GOARCH being built: a difference d makes the array
// [d]struct{}, which is not assignable to [0]struct{}. `go vet` with
// GOOS=linux and any GOARCH therefore checks that architecture's table.
var (
	_ [0]struct{} = [oAccmode ^ unix.O_ACCMODE]struct{}{}
	_ [0]struct{} = [oRdonly ^ unix.O_RDONLY]struct{}{}
	_ [0]struct{} = [oWronly ^ unix.O_WRONLY]struct{}{}
	_ [0]struct{} = [oRdwr ^ unix.O_RDWR]struct{}{}
	_ [0]struct{} = [oCreat ^ unix.O_CREAT]struct{}{}
	_ [0]struct{} = [oExcl ^ unix.O_EXCL]struct{}{}
	_ [0]struct{} = [oNoctty ^ unix.O_NOCTTY]struct{}{}
	_ [0]struct{} = [oTrunc ^ unix.O_TRUNC]struct{}{}
	_ [0]struct{} = [oAppend ^ unix.O_APPEND]struct{}{}
	_ [0]struct{} = [oNonblock ^ unix.O_NONBLOCK]struct{}{}
	_ [0]struct{} = [oDsync ^ unix.O_DSYNC]struct{}{}
	_ [0]struct{} = [oAsync ^ unix.O_ASYNC]struct{}{}
	_ [0]struct{} = [oDirect ^ unix.O_DIRECT]struct{}{}
	_ [0]struct{} = [oDirectory ^ unix.O_DIRECTORY]struct{}{}
	_ [0]struct{} = [oNofollow ^ unix.O_NOFOLLOW]struct{}{}
	_ [0]struct{} = [oNoatime ^ unix.O_NOATIME]struct{}{}
	_ [0]struct{} = [oCloexec ^ unix.O_CLOEXEC]struct{}{}
	_ [0]struct{} = [oSync ^ unix.O_SYNC]struct{}{}
	_ [0]struct{} = [oPath ^ unix.O_PATH]struct{}{}
	_ [0]struct{} = [oTmpfile ^ unix.O_TMPFILE]struct{}{}
)

// x/sys/unix gives O_LARGEFILE as 0 where the kernel implies it (64-bit
// architectures), so it can only be compared where it is not 0.
func TestKernelLargefileMatchesUnix(t *testing.T) {
	if unix.O_LARGEFILE != 0 && kernelLargefile != unix.O_LARGEFILE {
		t.Fatalf("kernelLargefile is %#x, unix.O_LARGEFILE is %#x", kernelLargefile, unix.O_LARGEFILE)
	}
	if kernelLargefile&(flagsPassed&^kernelLargefile|flagsForced) != 0 {
		t.Fatalf("kernelLargefile %#x overlaps another accepted bit", kernelLargefile)
	}
}
