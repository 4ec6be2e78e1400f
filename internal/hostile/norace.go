//go:build linux && !race

package hostile

// Race reports whether the race detector is on, so that tests can scale
// their load down: it slows the opener and the parent several times over.
const Race = false
