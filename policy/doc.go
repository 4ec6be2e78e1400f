// Package policy decides what the opener may open. It is pure: it parses
// rules, checks requested paths and flags, and says which rule directory a
// request must be opened beneath. It makes no system calls, so every decision
// can be tested and fuzzed without a kernel.
//
// # Rules
//
// A rule is written [MODES:]PATH. PATH is absolute and clean. Without a
// trailing slash it allows exactly that file; with one ("/srv/www/") it
// allows anything beneath that directory, at any depth, and the directory
// itself (to list it). "/" is the tree of the whole filesystem. MODES is a set
// of letters; this version knows only r (read), which is also the default.
//
// # Requests
//
// A requested path must be absolute, clean (filepath.Clean leaves it
// unchanged, so no "..", no "//", no trailing slash), free of NUL bytes and at
// most MaxPath bytes long. Anything else is a bad request: it is refused, not
// cleaned, because a path that needs cleaning was not produced by an honest
// client. Matching is deny by default and by whole path components, so the
// rule "/srv/www/" never matches "/srv/wwwx/a". When several rules match,
// the most specific decides: an exact rule, then the deepest tree.
//
// # Flags
//
// Check decides every open(2) flag bit; see FlagTable for the whole list. In
// short: read access with O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW is accepted;
// O_CLOEXEC and O_NOCTTY are always added; flags that would write, create or
// truncate are denied (EACCES) because no rule grants write access in this
// version; anything else, including O_NOATIME, O_PATH and access mode 3, is a
// bad request (EINVAL).
//
// # What a match means
//
// A match is lexical. The opener still opens the result beneath the rule's
// directory with openat2(RESOLVE_BENEATH), so that symlinks and rename races
// on disk cannot leave the rule's tree; the Decision says which directory
// (Dirs) and which relative path to use.
package policy
