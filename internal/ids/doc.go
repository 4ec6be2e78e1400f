// Package ids turns a user or group, given as a decimal id or a name, into
// its numeric id. It is the one lookup behind parent.LookupCredential, the
// owner= names of a policy file and privsep serve's --allow-uid,
// --allow-gid and --socket-group, so that all of them accept the same
// spellings and fail with the same messages.
//
// Names are looked up with os/user: call these before a sandbox hides
// /etc/passwd and /etc/group.
//
// It is not a credential switch: it reads the user and group databases and
// changes nothing (parent.DropPrivileges does the switching).
package ids
