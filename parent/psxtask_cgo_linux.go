//go:build cgo

package parent

import (
	"os"
	"strconv"
)

// psxTaskDir is the directory that libpsx, the C half of psx used in
// programs linked with cgo, lists after running a system call on the
// calling thread, to find the other threads: /proc/PID/task. When that
// call was landlock_restrict_self, the listing must stay allowed, or psx
// cannot reach the other threads and ends the process. So a Landlock
// ruleset keeps LANDLOCK_ACCESS_FS_READ_DIR on it, and on it only: the
// process may list its own threads' /proc directories, not read what is in
// them. (go-landlock does the same; see its issue 39.)
func psxTaskDir() string { return "/proc/" + strconv.Itoa(os.Getpid()) + "/task" }
