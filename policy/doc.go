// Package policy decides what the opener may do. It is pure: it parses
// rules, checks requested paths, flags and listen addresses, and says which
// rule directory a request must be opened beneath. It makes no system
// calls, so every decision can be tested and fuzzed without a kernel.
//
// # Rules
//
// A path rule is written [MODES:]PATH. PATH is absolute and clean. Without
// a trailing slash it allows exactly that file; with one ("/srv/www/") it
// allows anything beneath that directory, at any depth, and the directory
// itself (to list it; its descriptor only with dirs=yes). "/" is the tree of the whole filesystem. MODES is a
// set of letters: r (read), w (write and truncate), a (append only: writes
// need O_APPEND and may not truncate), c (create: O_CREAT, O_EXCL,
// O_TMPFILE). No MODES means r; w and a together are refused.
//
// In policy files (ParseFile) and on the wire (ParseLine) a rule may carry
// options: mode=OCTAL narrows the mode of created files (never beyond
// 0666), owner=USER[:GROUP] names the owner the opener gives them, and
// hardlinks=yes lets the opener hand out regular files with more than one
// link, which it otherwise refuses (a hard link is how whoever can write
// in a tree reaches a file outside it; Decision.Hardlinks carries the
// option to the opener). A listen rule, "listen NET:ADDR", allows one
// listening socket.
//
// # Nested rules
//
// When several rules match a path the most specific decides (see
// Requests), but the opener resolves what a name leads to, and whoever can
// write in a tree can make a name in it (a symlink, or a rename) lead to
// the file of a narrower rule inside it. So New refuses a policy in which
// a rule lies at or beneath a tree rule's directory while the tree grants
// something the rule does not: a mode letter (w covers a), a wider mode=
// or another owner= when both create, or any other option the tree has
// and the rule lacks. The error is a *NestingError naming both rules (in
// a *FileError at the inner rule's line when it came from a file). An
// inner rule that grants as much or more is fine: through the tree, its
// file gets no more than the inner rule itself gives.
// dirs=yes lets the opener hand out descriptors of the directories the rule
// covers (Decision.Dirs; see Rule.Dirs for why that is an option). A
// listen rule, "listen NET:ADDR", allows one listening socket.
//
// # Requests
//
// A requested path must be absolute, clean (filepath.Clean leaves it
// unchanged, so no "..", no "//", no trailing slash), free of NUL bytes and
// at most MaxPath bytes long. Anything else is a bad request: it is
// refused, not cleaned, because a path that needs cleaning was not produced
// by an honest client. Matching is deny by default and by whole path
// components, so the rule "/srv/www/" never matches "/srv/wwwx/a". When
// several rules match, the most specific decides: an exact rule, then the
// deepest tree; only its modes count.
//
// # Flags
//
// Check decides every open(2) flag bit; FlagTable lists them. Flags are
// first checked on their own (a bad request, EINVAL: access mode 3,
// O_RDONLY|O_TRUNC, O_EXCL without O_CREAT, O_NOATIME, O_PATH, O_DIRECT,
// O_ASYNC, unknown bits), then against the deciding rule (a denial,
// EACCES). O_CLOEXEC and O_NOCTTY are always added.
//
// # What a match means
//
// A match is lexical. The opener still opens the result beneath the rule's
// directory with openat2(RESOLVE_BENEATH), so that symlinks and rename races
// on disk cannot leave the rule's tree; the Decision says which directory
// (Dirs) and which relative path to use. Check and CheckListen never
// allocate: refusing a request costs no more than allowing one.
package policy
