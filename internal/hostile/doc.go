// Package hostile is the test harness of privsep's hostile-input and fault
// suite (RELIABILITY.md). It is imported only by tests.
//
//   - Peer starts the real opener (the test binary re-executed with the
//     opener's argv and environment, so the importing package's TestMain must
//     call child.Init) and speaks raw bytes to it: truncated headers, lying
//     lengths, stray descriptors and control messages, floods.
//   - BuildFakeChild builds the program in ./fakechild once per test and
//     hands out hard links to it whose names choose a misbehaviour, for tests
//     of the parent against an opener that breaks the protocol or dies.
//   - The process helpers read /proc: descriptor counts, RLIMIT_NOFILE,
//     resident size, thread states.
//   - Row logs one line of the reliability table; scripts/reliability.sh
//     collects those lines from go test -v and writes RELIABILITY.md.
package hostile
