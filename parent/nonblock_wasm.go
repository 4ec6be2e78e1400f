//go:build js || wasip1

package parent

// oNonblock is 0: the wasm ports have no O_NONBLOCK, and no FIFO to hang
// an open on.
const oNonblock = 0
