package ids

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// MaxID is the largest valid uid or gid: (uid_t)-1 means "no change" to
// setresuid and chown, so it names nobody.
const MaxID = 1<<32 - 2

// User returns the passwd entry of s, a decimal uid or a user name. A uid
// with no entry is still a uid: its entry then has the uid as its name and
// as its primary group.
func User(s string) (*user.User, error) {
	n, isNum, err := number(s, "user")
	if err != nil {
		return nil, err
	}
	if isNum {
		id := strconv.FormatUint(uint64(n), 10)
		if u, err := user.LookupId(id); err == nil {
			return u, nil
		}
		return &user.User{Uid: id, Gid: id, Username: id}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, lookupError("user", s, err)
	}
	return u, nil
}

// UID returns the uid of s, a decimal uid or a user name.
func UID(s string) (uint32, error) {
	u, err := User(s)
	if err != nil {
		return 0, err
	}
	return parse("user", s, "uid", u.Uid)
}

// GID returns the gid of s, a decimal gid or a group name. A decimal gid
// needs no /etc/group entry.
func GID(s string) (uint32, error) {
	n, isNum, err := number(s, "group")
	if err != nil || isNum {
		return n, err
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, lookupError("group", s, err)
	}
	return parse("group", s, "gid", g.Gid)
}

// number parses s when it is all decimal digits (isNum), failing when it is
// empty or out of range. Anything else, "+5" and "-1" included, is a name.
func number(s, what string) (n uint32, isNum bool, err error) {
	if s == "" {
		return 0, false, fmt.Errorf("empty %s", what)
	}
	if strings.Trim(s, "0123456789") != "" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > MaxID {
		return 0, true, fmt.Errorf("%s id %q is out of range (0 to %d)", what, s, int64(MaxID))
	}
	return uint32(v), true, nil
}

// parse reads the id the database gave for name.
func parse(what, name, field, id string) (uint32, error) {
	v, err := strconv.ParseUint(id, 10, 64)
	if err != nil || v > MaxID {
		return 0, fmt.Errorf("%s %q has %s %q, not a valid id", what, name, field, id)
	}
	return uint32(v), nil
}

// lookupError says that name is unknown, or why it could not be looked up.
func lookupError(what, name string, err error) error {
	var unknownUser user.UnknownUserError
	var unknownGroup user.UnknownGroupError
	if errors.As(err, &unknownUser) || errors.As(err, &unknownGroup) {
		return fmt.Errorf("unknown %s %q", what, name)
	}
	return fmt.Errorf("looking up %s %q: %w", what, name, err)
}
