package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	osuser "os/user"
	"strconv"
	"strings"

	"github.com/privsep-go/privsep/parent"

	"github.com/privsep-go/privsep/policy"
)

const policyUsage = `Usage: privsep policy check [--allow RULE]... [--allow-listen NET:ADDR]... [--policy FILE]...
                           [--access r|w|rw|a] [--create] [--uid UID|USER] [--gid GID|GROUP]
                           PATH|NET:ADDR...

Check PATHs against a policy without opening anything: for each PATH print
"allow" or "deny", the rule that decided (with the file and line it came
from) and why. The access asked for is --access (default r: read) and, with
--create, creating the file. An operand NET:ADDR (tcp::443,
unix:/run/app.sock) is checked against the listen rules instead.

With --uid or --gid the policy is a server's (privsep serve): its files may
have [uid ...] and [gid ...] sections, and the operands are checked against
what a client with that uid and primary gid gets.

Every tree rule's directory is looked at too: one that does not exist is
reported, as the opener would refuse it at start, unless the rule says
optional=yes (then it is only noted).

Exit status: 0 if every operand is allowed, 1 if any is denied, 2 on a usage
error (a bad rule or policy file included: FILE:LINE: what is wrong) or a
missing rule directory.

Options:
`

func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "--help" && args[0] != "-h" && args[0] != "-help") {
		fmt.Fprint(stderr, "privsep policy: want the subcommand check\n\n"+policyUsage)
		return exitUsage
	}
	if args[0] == "check" {
		args = args[1:]
	}
	fs, parse := flagSet("policy check", policyUsage, stdout, stderr)
	var pf policyFlags
	pf.register(fs)
	access := fs.String("access", "r", "the access to check: r, w, rw or a (append)")
	create := fs.Bool("create", false, "check creating the file too")
	uid, gid := fs.String("uid", "", "check a server policy for a client with `UID|USER` (its [uid ...] sections)"),
		fs.String("gid", "", "check a server policy for a client whose primary group is `GID|GROUP` (its [gid ...] sections)")
	if ok, code := parse(args); !ok {
		return code
	}
	flags, ok := accessFlags[*access]
	if !ok {
		fmt.Fprintf(stderr, "privsep policy check: --access %q: want r, w, rw or a\n", *access)
		return exitUsage
	}
	if *create {
		flags |= os.O_CREATE
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "privsep policy check: no PATH given (see privsep policy check --help)")
		return exitUsage
	}
	pol, ok := loadCheckPolicy(&pf, *uid, *gid, stderr)
	if !ok {
		return exitUsage
	}
	rules := pol.Rules()
	status := exitOK
	if !reportRuleDirs(rules, stdout) {
		status = exitUsage
	}
	for _, path := range fs.Args() {
		if network, addr, ok := listenOperand(path); ok {
			if !checkListen(pol, path, network, addr, stdout) && status == exitOK {
				status = exitFail
			}
			continue
		}
		d, err := pol.Check(absolute(path), flags, 0o644)
		rule := ""
		if d.Rule >= 0 {
			r := rules[d.Rule]
			rule = fmt.Sprintf("rule %s", r)
			if r.Source != "" {
				rule += " (" + r.Source + ")"
			}
		}
		if err == nil {
			fmt.Fprintf(stdout, "allow %s: %s\n", path, rule)
			continue
		}
		if status == exitOK {
			status = exitFail
		}
		var ref *policy.Refusal
		why := err.Error()
		if errors.As(err, &ref) {
			why = ref.Why
			if ref.Kind == policy.BadRequest {
				why = "bad request: " + why
			}
		}
		if rule != "" {
			why = rule + ": " + why
		}
		fmt.Fprintf(stdout, "deny %s: %s\n", path, why)
	}
	return status
}

var accessFlags = map[string]int{
	"r":  os.O_RDONLY,
	"w":  os.O_WRONLY,
	"rw": os.O_RDWR,
	"a":  os.O_WRONLY | os.O_APPEND,
}

// loadCheckPolicy loads the policy to check: a client's policy of a server
// policy when uid or gid is given, else the plain policy.
func loadCheckPolicy(pf *policyFlags, uidArg, gidArg string, stderr io.Writer) (*policy.Policy, bool) {
	if uidArg == "" && gidArg == "" {
		return pf.load("policy check", stderr)
	}
	// A client's ids: one not given matches no section of its kind.
	const none = math.MaxUint32
	uid, gid := uint32(none), uint32(none)
	var err error
	if uidArg != "" {
		if uid, err = clientID(uidArg, true); err != nil {
			fmt.Fprintf(stderr, "privsep policy check: --uid: %v\n", err)
			return nil, false
		}
	}
	if gidArg != "" {
		if gid, err = clientID(gidArg, false); err != nil {
			fmt.Fprintf(stderr, "privsep policy check: --gid: %v\n", err)
			return nil, false
		}
	}
	sp, err := parent.PolicySource{Files: pf.files, Rules: pf.rules, Listen: pf.listens}.ServerPolicy()
	if err != nil {
		fmt.Fprintf(stderr, "privsep policy check: %v\n", err)
		return nil, false
	}
	return sp.For(uid, gid), true
}

// listenNetworks are the networks a listen operand may name.
var listenNetworks = map[string]bool{"tcp": true, "tcp4": true, "tcp6": true, "udp": true, "udp4": true, "udp6": true, "unix": true}

// listenOperand splits an operand NET:ADDR; a path is never one, since it
// starts with "/" (or, relative, with no known network before a colon).
func listenOperand(op string) (network, addr string, ok bool) {
	network, addr, ok = strings.Cut(op, ":")
	return network, addr, ok && listenNetworks[network]
}

// checkListen prints the decision for a listen operand and reports whether
// it is allowed.
func checkListen(pol *policy.Policy, op, network, addr string, stdout io.Writer) bool {
	r, err := pol.CheckListen(network, addr)
	if err == nil {
		rule := fmt.Sprintf("rule %s", r)
		if r.Source != "" {
			rule += " (" + r.Source + ")"
		}
		fmt.Fprintf(stdout, "allow %s: %s\n", op, rule)
		return true
	}
	why := err.Error()
	var ref *policy.Refusal
	if errors.As(err, &ref) {
		why = ref.Why
	}
	fmt.Fprintf(stdout, "deny %s: %s\n", op, why)
	return false
}

// reportRuleDirs prints every tree rule whose directory is not there, and
// reports false if one of them is not optional: the opener would refuse
// the policy at start. It looks from here, as the opener would, but is a
// forecast: the opener resolves the directories when it starts.
func reportRuleDirs(rules []policy.Rule, stdout io.Writer) bool {
	ok := true
	for _, r := range rules {
		if !r.Tree || r.IsListen() {
			continue
		}
		fi, err := os.Stat(r.Path)
		if err == nil && fi.IsDir() {
			continue
		}
		why := "not a directory"
		if err != nil {
			why = errors.Unwrap(err).Error()
			var pe *os.PathError
			if errors.As(err, &pe) {
				why = pe.Err.Error()
			}
		}
		src := ""
		if r.Source != "" {
			src = " (" + r.Source + ")"
		}
		if r.Optional {
			fmt.Fprintf(stdout, "note rule %s%s: directory %s: %s; optional, so requests under it fail until the opener is restarted with it there\n", r, src, r.Path, why)
			continue
		}
		ok = false
		fmt.Fprintf(stdout, "missing rule %s%s: directory %s: %s; the opener refuses the policy at start (create it, or add optional=yes)\n", r, src, r.Path, why)
	}
	return ok
}

// clientID is the id a --uid or --gid names: a number, or a user or group
// name looked up here.
func clientID(s string, user bool) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n < math.MaxUint32 {
		return uint32(n), nil
	}
	var idStr string
	if user {
		u, err := osuser.Lookup(s)
		if err != nil {
			return 0, fmt.Errorf("unknown user %q", s)
		}
		idStr = u.Uid
	} else {
		g, err := osuser.LookupGroup(s)
		if err != nil {
			return 0, fmt.Errorf("unknown group %q", s)
		}
		idStr = g.Gid
	}
	n, err := strconv.ParseUint(idStr, 10, 32)
	if err != nil || n >= math.MaxUint32 {
		return 0, fmt.Errorf("%q has id %q, not a 32-bit id", s, idStr)
	}
	return uint32(n), nil
}
