package policy

// Rules as a policy file writes them (ParseLine): options after the path,
// owner names looked up through a Resolver.

import (
	"fmt"
	"strconv"
	"strings"
)

// Resolver turns user and group names into ids for owner= options. Package
// policy makes no system calls, so callers that accept names supply one
// (os/user does the lookup); without one only numeric ids are accepted.
type Resolver interface {
	LookupUser(name string) (uid int64, err error)
	LookupGroup(name string) (gid int64, err error)
}

// ParseLine parses one rule in the policy-file language:
//
//	[MODES:]PATH [mode=OCTAL] [owner=USER[:GROUP]] [hardlinks=yes|no] [dirs=yes|no] [optional=yes|no]
//	listen NET:ADDR [mode=OCTAL] [owner=USER[:GROUP]] [replace]
//
// PATH may be written in double quotes, with Go escapes, when it holds
// spaces or other special bytes. mode= narrows the most permissive mode of
// created files (at most 0666). owner= names the owner of created files; res
// resolves names and may be nil, in which case only numeric ids are
// accepted. hardlinks=yes allows opening regular files with more than one
// link (the default, no, refuses them). dirs=yes allows handing out
// descriptors of directories (see Rule.Dirs); the default is no.
// optional=yes lets a tree rule's directory be missing at start (see
// Rule.Optional); it applies to tree rules only. Unknown options are errors.
func ParseLine(s string, res Resolver) (Rule, error) {
	if rest, ok := strings.CutPrefix(s, "listen"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		return parseListenLine(s, rest, res)
	}
	bad := func(format string, args ...any) (Rule, error) {
		return Rule{}, &RuleError{Rule: s, Why: fmt.Sprintf(format, args...)}
	}
	modes, rest, err := splitModesLine(s)
	if err != nil {
		return bad("%v", err)
	}
	path, opts, err := splitPath(rest)
	if err != nil {
		return bad("%v", err)
	}
	r, err := newRule(s, modes, path)
	if err != nil {
		return Rule{}, err
	}
	seen := map[string]bool{}
	for _, opt := range strings.Fields(opts) {
		k, v, ok := strings.Cut(opt, "=")
		if !ok || v == "" {
			return bad("option %q: want key=value", opt)
		}
		if seen[k] {
			return bad("option %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || len(v) < 2 || v[0] != '0' {
				return bad("mode=%s: want an octal mode with a leading 0, such as 0640", v)
			}
			if m&^DefaultCreateMode != 0 {
				return bad("mode=%s: only permission bits within 0666 may be granted (no execute, setuid, setgid or sticky)", v)
			}
			if m == 0 {
				return bad("mode=%s: would create files nobody can open", v)
			}
			r.CreateMode = uint32(m)
		case "owner":
			if r.Modes&Create == 0 {
				return bad("owner= applies to created files, but the rule has no c mode")
			}
			if r.UID, r.GID, err = parseOwner(v, res); err != nil {
				return bad("owner=%s: %v", v, err)
			}
		case "hardlinks", "dirs", "optional":
			b, ok := yesNo(v)
			if !ok {
				return bad("%s=%s: want yes or no", k, v)
			}
			switch k {
			case "hardlinks":
				r.Hardlinks = b
			case "dirs":
				r.Dirs = b
			default:
				r.Optional = b
			}
		default:
			return bad("unknown option %q (known: mode, owner, hardlinks, dirs, optional)", k)
		}
	}
	if r.Dirs && r.Modes&Read == 0 {
		return bad("dirs=yes hands out directory descriptors, which open for reading only, but the rule has no r mode")
	}
	if r.Optional && !r.Tree {
		return bad("optional=yes applies to tree rules (a path ending in /), whose directory must exist at start")
	}
	if r.CreateMode != 0 && r.Modes&Create == 0 {
		return bad("mode= applies to created files, but the rule has no c mode")
	}
	return r, nil
}

// yesNo parses the value of a yes-or-no option.
func yesNo(v string) (b, ok bool) {
	switch v {
	case "yes":
		return true, true
	case "no":
		return false, true
	}
	return false, false
}

// splitModesLine is splitModes for a line, where the path may be quoted and
// a colon may appear in the options.
func splitModesLine(s string) (Mode, string, error) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, `"`) {
		return Read, s, nil
	}
	i := strings.IndexAny(s, ":/\" \t")
	if i < 0 || s[i] != ':' {
		return 0, "", fmt.Errorf("path must be absolute")
	}
	if i == 0 {
		return 0, "", fmt.Errorf("empty mode list before ':'")
	}
	m, err := parseModes(s[:i])
	return m, s[i+1:], err
}

// splitPath takes the path, quoted or not, off the front of s and returns
// it with the rest.
func splitPath(s string) (path, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("bad quoted path: %v", err)
		}
		path, _ = strconv.Unquote(q)
		rest = s[len(q):]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return "", "", fmt.Errorf("want a space after the quoted path")
		}
		return path, rest, nil
	}
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", nil
	}
	return s[:i], s[i:], nil
}

// parseOwner parses the value of owner=: USER[:GROUP], names or ids. A
// missing group is NoOwner.
func parseOwner(v string, res Resolver) (uid, gid int64, err error) {
	user, group, hasGroup := strings.Cut(v, ":")
	if uid, err = lookupID(user, res, true); err != nil {
		return 0, 0, err
	}
	gid = NoOwner
	if hasGroup {
		if gid, err = lookupID(group, res, false); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// maxID is the largest uid or gid: (uid_t)-1 means "no change" to chown.
const maxID int64 = 1<<32 - 2

func lookupID(name string, res Resolver, user bool) (int64, error) {
	if name == "" {
		return 0, fmt.Errorf("empty name")
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if int64(n) > maxID {
			return 0, fmt.Errorf("id %d is out of range (0 to %d)", n, maxID)
		}
		return int64(n), nil
	}
	if res == nil {
		return 0, fmt.Errorf("%q is not a numeric id", name)
	}
	lookup := res.LookupGroup
	if user {
		lookup = res.LookupUser
	}
	id, err := lookup(name)
	if err != nil {
		return 0, err
	}
	if id < 0 || id > maxID {
		return 0, fmt.Errorf("%q resolves to id %d, out of range (0 to %d)", name, id, maxID)
	}
	return id, nil
}
