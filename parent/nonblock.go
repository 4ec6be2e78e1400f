//go:build !js && !wasip1

package parent

import "syscall"

// oNonblock is O_NONBLOCK where the system has it.
const oNonblock = syscall.O_NONBLOCK
