package parent

import (
	"io/fs"
	"os"
)

// The types here are the same on every system; where there is no opener,
// the functions that take or return them fail (unsupported_other.go).

// Request is one item of a batch: the arguments of Open.
type Request struct {
	Path string
	Flag int
	Perm fs.FileMode
}

// Result is the outcome of one Request: a file or an error, as Open would
// have returned them.
type Result struct {
	File *os.File
	Err  error
}

// Credential is a user to become: the ids DropPrivileges sets.
type Credential struct {
	UID, GID int
	// Groups are the supplementary groups; empty clears them.
	Groups []int
}

// DirEntry is one entry of a directory as the opener lists it: its name
// and its type, and nothing else (no size, mode or time).
type DirEntry struct {
	Name string
	// Type holds the type bits of an fs.FileMode: 0 for a regular file,
	// fs.ModeDir, fs.ModeSymlink, fs.ModeNamedPipe, fs.ModeSocket,
	// fs.ModeDevice (with fs.ModeCharDevice for a character device), or
	// fs.ModeIrregular when neither the file system nor a look at the entry
	// could tell.
	Type fs.FileMode
}
