// Package protocol is privsep's wire format and the only code in the module
// that calls sendmsg(2) and recvmsg(2).
//
// The parent and the opener (the child) talk over one AF_UNIX SOCK_SEQPACKET
// socket pair. One request or reply is exactly one message, so descriptors
// passed with SCM_RIGHTS belong to exactly one message and no framing code is
// needed. Every message starts with a 16-byte [Header]; PROTOCOL.md at the
// module root documents the format byte by byte for implementations in other
// languages.
//
// # What the package guarantees
//
//   - Decoding is strict: every length is checked against the bytes received,
//     unknown types and versions are refused, reserved bytes must be zero and
//     trailing bytes are an error. Decoders never panic on any input (they are
//     fuzzed) and return errors that match [ErrMalformed] or [ErrVersion].
//   - [Recv] takes descriptors with MSG_CMSG_CLOEXEC, checks MSG_TRUNC and
//     MSG_CTRUNC, and compares the number of descriptors that arrived with the
//     header's count. On any mismatch or error it closes every descriptor that
//     did arrive before returning, so a caller that gets an error owns nothing.
//   - On success the caller owns the returned descriptors and must close them.
//
// # What it is not
//
// The package knows bytes, not files or policies: rules travel as opaque
// strings that package policy parses, and paths as bytes that the opener
// checks. It does no retries and keeps no state between calls (a listing
// too large for one dir-list reply goes on from a cookie the next readdir
// carries); concurrency,
// request ids and timeouts belong to the parent and child packages.
package protocol
