package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Scoped policies: one server (privsep serve) gives different clients
// different views. A policy file may be divided into sections, each scoping
// the rules that follow it:
//
//	r:/etc/hostname          # before any section: every client
//	[uid alice]              # clients whose uid is alice's
//	r:/home/alice/
//	[gid staff]              # clients whose primary gid is staff's
//	r:/srv/staff/
//	[all]                    # every client again
//	r:/usr/share/doc/
//
// A client's policy is the rules for all clients plus the rules of the
// sections that match its uid or its primary gid, as the kernel reports
// them for its connection (SO_PEERCRED). Only the server knows who its
// clients are: a re-executed opener and privsep cat or exec have no peers
// to scope to, and ParseFile refuses sections.

// ScopeKind says which clients a section applies to.
type ScopeKind uint8

// The kinds of section.
const (
	ScopeAll ScopeKind = iota // every client: "[all]", and rules before any section
	ScopeUID                  // clients with this uid: "[uid NAME|NUM]"
	ScopeGID                  // clients with this primary gid: "[gid NAME|NUM]"
)

// Scope names the clients a section applies to.
type Scope struct {
	Kind ScopeKind
	ID   uint32 // the uid or gid; 0 for ScopeAll
}

func (s Scope) String() string {
	switch s.Kind {
	case ScopeUID:
		return "uid " + strconv.FormatUint(uint64(s.ID), 10)
	case ScopeGID:
		return "gid " + strconv.FormatUint(uint64(s.ID), 10)
	}
	return "all"
}

// MaxScopeCombinations bounds the number of (uid section, gid section)
// pairs a scoped policy may have: Compile validates and compiles the policy
// of every pair, so that a conflict is found at start rather than when the
// first such client connects.
const MaxScopeCombinations = 4096

// Scoped holds rules with the clients they apply to, as parsed; Compile
// makes the per-client policies. The zero value is an empty policy, ready
// to use.
type Scoped struct {
	all      []Rule
	uid, gid sections
}

// sections holds the sections of one kind (uid or gid): each id's rules,
// and the ids in order of first appearance.
type sections struct {
	ids   []uint32
	rules map[uint32][]Rule
}

func (s *sections) add(id uint32, rules []Rule) {
	if s.rules == nil {
		s.rules = make(map[uint32][]Rule)
	}
	if _, ok := s.rules[id]; !ok {
		s.ids = append(s.ids, id)
	}
	s.rules[id] = append(s.rules[id], rules...)
}

// Add adds rules to the section for scope (creating it if needed), after
// the rules it already has.
func (s *Scoped) Add(scope Scope, rules ...Rule) {
	switch scope.Kind {
	case ScopeUID:
		s.uid.add(scope.ID, rules)
	case ScopeGID:
		s.gid.add(scope.ID, rules)
	default:
		s.all = append(s.all, rules...)
	}
}

// Merge adds every section of o to s, after what s already has: how several
// policy files make one policy.
func (s *Scoped) Merge(o *Scoped) {
	s.Add(Scope{Kind: ScopeAll}, o.all...)
	for _, id := range o.uid.ids {
		s.uid.add(id, o.uid.rules[id])
	}
	for _, id := range o.gid.ids {
		s.gid.add(id, o.gid.rules[id])
	}
}

// Sections returns the scopes that have a section, "all" first, then uid
// sections and gid sections in the order they first appeared.
func (s *Scoped) Sections() []Scope {
	scopes := []Scope{{Kind: ScopeAll}}
	for _, id := range s.uid.ids {
		scopes = append(scopes, Scope{Kind: ScopeUID, ID: id})
	}
	for _, id := range s.gid.ids {
		scopes = append(scopes, Scope{Kind: ScopeGID, ID: id})
	}
	return scopes
}

// Rules returns the rules for a client with this uid and primary gid: the
// rules for all clients, then those of the uid's section, then those of the
// gid's section.
func (s *Scoped) Rules(uid, gid uint32) []Rule {
	return join(s.all, s.uid.rules[uid], s.gid.rules[gid])
}

// ParseScopedFile parses a policy file that may have sections: a line
// "[uid NAME|NUM]" or "[gid NAME|NUM]" scopes the rules after it to the
// clients with that uid or primary gid, "[all]" goes back to rules for every
// client, and rules before any section apply to every client. Rules are
// written as ParseFile reads them; res resolves user and group names in
// section headers as in owner= options (nil: numbers only). A section may
// appear more than once; its rules add up. Every error is a *FileError.
func ParseScopedFile(name string, data []byte, res Resolver) (*Scoped, error) {
	s := &Scoped{}
	scope := Scope{Kind: ScopeAll}
	err := eachLine(name, data, func(n int, line string) error {
		if strings.HasPrefix(line, "[") {
			sc, err := parseSection(line, res)
			if err != nil {
				return err
			}
			scope = sc
			s.Add(scope) // an empty section still names its scope
			return nil
		}
		r, err := fileRule(name, n, line, res)
		if err != nil {
			return err
		}
		s.Add(scope, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseSection parses a section header: "[all]", "[uid NAME|NUM]" or
// "[gid NAME|NUM]", with optional white space inside the brackets.
func parseSection(line string, res Resolver) (Scope, error) {
	bad := func(format string, args ...any) (Scope, error) {
		return Scope{}, fmt.Errorf("section %q: %s (want [all], [uid USER] or [gid GROUP])", line, fmt.Sprintf(format, args...))
	}
	inner, ok := strings.CutSuffix(line[1:], "]")
	if !ok {
		return bad("no closing ']' at the end of the line")
	}
	f := strings.Fields(inner)
	switch {
	case len(f) == 1 && f[0] == "all":
		return Scope{Kind: ScopeAll}, nil
	case len(f) == 2 && (f[0] == "uid" || f[0] == "gid"):
		id, err := scopeID(f[1], res, f[0] == "uid")
		if err != nil {
			return bad("%v", err)
		}
		if f[0] == "uid" {
			return Scope{Kind: ScopeUID, ID: id}, nil
		}
		return Scope{Kind: ScopeGID, ID: id}, nil
	case len(f) == 0:
		return bad("empty")
	case f[0] == "uid" || f[0] == "gid":
		return bad("%s takes exactly one user or group", f[0])
	}
	return bad("unknown section")
}

// scopeID resolves a section's user or group: a decimal id, or a name.
func scopeID(name string, res Resolver, user bool) (uint32, error) {
	what := "group"
	if user {
		what = "user"
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		if n == math.MaxUint32 { // (uid_t)-1 means "no id" to the kernel
			return 0, fmt.Errorf("%s id %d is not a valid id", what, n)
		}
		return uint32(n), nil
	}
	if name[0] >= '0' && name[0] <= '9' {
		return 0, fmt.Errorf("%s id %q is out of range", what, name)
	}
	if res == nil {
		return 0, fmt.Errorf("%q is not a numeric %s id", name, what)
	}
	var id int64
	var err error
	if user {
		id, err = res.LookupUser(name)
	} else {
		id, err = res.LookupGroup(name)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, name, err)
	}
	if id < 0 || id >= math.MaxUint32 {
		return 0, fmt.Errorf("%s %q has id %d, out of range", what, name, id)
	}
	return uint32(id), nil
}

// Compile compiles the policy of every kind of client: those that match no
// section, each uid section, each gid section and each pair of a uid and a
// gid section. A rule that repeats another in a policy some client would
// get (in the same section, in [all] and a section, or in a uid section and
// a gid section) is an error, as New reports it, and so is a narrower rule
// inside a broader tree that some client would get together (a
// *NestingError; a tree in [all] and a narrower rule in a section is one).
// More than
// MaxScopeCombinations pairs of sections is an error.
func (s *Scoped) Compile() (*ScopedPolicy, error) {
	nu, ng := len(s.uid.ids), len(s.gid.ids)
	if nu*ng > MaxScopeCombinations {
		return nil, fmt.Errorf("policy: %d uid sections and %d gid sections make %d combinations, more than the %d allowed",
			nu, ng, nu*ng, MaxScopeCombinations)
	}
	p := &ScopedPolicy{
		uid:  make(map[uint32]*Policy, nu),
		gid:  make(map[uint32]*Policy, ng),
		both: make(map[[2]uint32]*Policy),
	}
	var err error
	if p.all, err = New(s.all); err != nil {
		return nil, err
	}
	p.list = append(p.list, p.all)
	compile := func(rules []Rule, who string) (*Policy, error) {
		pol, err := New(rules)
		if err != nil {
			var fe *FileError
			if errors.As(err, &fe) {
				return nil, &FileError{File: fe.File, Line: fe.Line, Err: fmt.Errorf("%w, in the policy of %s", fe.Err, who)}
			}
			return nil, fmt.Errorf("%w, in the policy of %s", err, who)
		}
		p.list = append(p.list, pol)
		return pol, nil
	}
	// A section of one kind alone: with no rules of its own, the clients
	// get the policy for all.
	single := func(sec *sections, who string, into map[uint32]*Policy) error {
		for _, id := range sec.ids {
			pol := p.all
			if len(sec.rules[id]) > 0 {
				if pol, err = compile(join(s.all, sec.rules[id]), fmt.Sprintf("clients with %s %d", who, id)); err != nil {
					return err
				}
			}
			into[id] = pol
		}
		return nil
	}
	if err := single(&s.uid, "uid", p.uid); err != nil {
		return nil, err
	}
	if err := single(&s.gid, "primary gid", p.gid); err != nil {
		return nil, err
	}
	for _, u := range s.uid.ids {
		for _, g := range s.gid.ids {
			var pol *Policy
			switch {
			case len(s.gid.rules[g]) == 0:
				pol = p.uid[u]
			case len(s.uid.rules[u]) == 0:
				pol = p.gid[g]
			default:
				if pol, err = compile(join(s.all, s.uid.rules[u], s.gid.rules[g]), fmt.Sprintf("a client with uid %d and primary gid %d, which gets both sections", u, g)); err != nil {
					return nil, err
				}
			}
			p.both[[2]uint32{u, g}] = pol
		}
	}
	return p, nil
}

// join concatenates rule lists into a new slice.
func join(lists ...[]Rule) []Rule {
	var rules []Rule
	for _, l := range lists {
		rules = append(rules, l...)
	}
	return rules
}

// ScopedPolicy is a compiled Scoped: the policy of each kind of client,
// each compiled once. It is immutable and safe for concurrent use.
type ScopedPolicy struct {
	all  *Policy
	uid  map[uint32]*Policy
	gid  map[uint32]*Policy
	both map[[2]uint32]*Policy
	list []*Policy
}

// Unscoped makes a ScopedPolicy that gives every client p.
func Unscoped(p *Policy) *ScopedPolicy {
	return &ScopedPolicy{all: p, list: []*Policy{p}}
}

// For returns the policy of a client with this uid and primary gid. Clients
// of the same kind get the same *Policy.
func (p *ScopedPolicy) For(uid, gid uint32) *Policy {
	_, hasU := p.uid[uid]
	_, hasG := p.gid[gid]
	switch {
	case hasU && hasG:
		return p.both[[2]uint32{uid, gid}]
	case hasU:
		return p.uid[uid]
	case hasG:
		return p.gid[gid]
	}
	return p.all
}

// Sections returns the sections that apply to a client with this uid and
// primary gid, for the log: "all", then "uid N" and "gid N" where the
// policy has such sections.
func (p *ScopedPolicy) Sections(uid, gid uint32) []string {
	s := []string{"all"}
	if _, ok := p.uid[uid]; ok {
		s = append(s, Scope{Kind: ScopeUID, ID: uid}.String())
	}
	if _, ok := p.gid[gid]; ok {
		s = append(s, Scope{Kind: ScopeGID, ID: gid}.String())
	}
	return s
}

// Policies returns every distinct compiled policy, each once: what a server
// prepares at start (opening the rule directories).
func (p *ScopedPolicy) Policies() []*Policy { return append([]*Policy(nil), p.list...) }
