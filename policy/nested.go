package policy

import (
	"fmt"
	"slices"
	"strings"
)

// A NestingError reports a rule that lies at or beneath the directory of a
// tree rule that grants more than it does. Matching picks the most specific
// rule for a path, but the opener resolves what the request names: a
// symlink inside the tree, a hard link, or a rename by anyone who can write
// in the tree makes the narrower rule's file reachable under a path the
// tree rule decides, with the tree's access. Since the narrower rule cannot
// be enforced by its path, such a policy is refused when it is compiled.
type NestingError struct {
	Inner Rule     // the narrower rule
	Tree  Rule     // the tree rule it lies in
	More  []string // what Tree grants that Inner does not: mode letters, options
}

func (e *NestingError) Error() string {
	inner := fmt.Sprintf("%q", e.Inner.String())
	if _, _, ok := splitSource(e.Inner.Source); !ok && e.Inner.Source != "" {
		// A FILE:LINE source is named by the *FileError around this one.
		inner += " (" + e.Inner.Source + ")"
	}
	tree := fmt.Sprintf("%q", e.Tree.String())
	if e.Tree.Source != "" {
		tree += " (" + e.Tree.Source + ")"
	}
	return fmt.Sprintf("rule %s lies inside tree rule %s, which grants more (%s) through any link or rename into it: "+
		"a narrower rule inside a broader tree cannot be enforced by path; split the tree or narrow it",
		inner, tree, strings.Join(e.More, ", "))
}

// checkNesting refuses a policy in which a path rule lies at or beneath a
// tree rule's directory while the tree grants something the rule does not.
// An inner rule that grants as much or more is fine: reaching its file
// through the tree gives no more than the inner rule itself does. Each
// rule is checked against every tree above it, nearest first, so the cost
// grows with the rules' depth, not with the square of their number.
func (p *Policy) checkNesting() error {
	for i, r := range p.rules {
		if r.IsListen() || r.Path == "/" {
			continue
		}
		// An exact rule at a tree's own path lies "at" it; a tree rule
		// cannot (that would be a duplicate), so it starts one level up.
		d := r.Path
		if r.Tree {
			d = parentDir(d)
		}
		for {
			if j, ok := p.trees[d]; ok && j != i {
				t := p.rules[j]
				if more := grantsMore(t, r); len(more) > 0 {
					err := error(&NestingError{Inner: r, Tree: t, More: more})
					if file, line, ok := splitSource(r.Source); ok {
						err = &FileError{File: file, Line: line, Err: err}
					}
					return err
				}
			}
			if d == "/" {
				break
			}
			d = parentDir(d)
		}
	}
	return nil
}

// parentDir is filepath.Dir for a clean absolute path other than "/".
func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// grantsMore lists what rule t grants that rule r does not: mode letters
// (w covers a, since a write rule allows appending), a wider mode= or
// another owner= for created files when both create, and any other option
// t has that r lacks. Options are compared as the policy language writes
// them, so an option added later (hardlinks=yes, or another yes-option)
// counts as granting more without this function knowing it.
func grantsMore(t, r Rule) []string {
	var more []string
	tm := t.Modes
	if r.Modes&Write != 0 {
		tm &^= Append
	}
	for _, l := range modeLetters {
		if tm&l.m != 0 && r.Modes&l.m == 0 {
			more = append(more, string(l.c))
		}
	}
	if t.Modes&Create != 0 && r.Modes&Create != 0 {
		if t.createMode()&^r.createMode() != 0 {
			more = append(more, fmt.Sprintf("mode=%04o", t.createMode()))
		}
		if (t.UID != NoOwner && t.UID != r.UID) || (t.GID != NoOwner && t.GID != r.GID) {
			var b strings.Builder
			writeOwner(&b, t.UID, t.GID)
			more = append(more, strings.TrimSpace(b.String()))
		}
	}
	ro := otherOptions(r)
	for _, o := range otherOptions(t) {
		if !slices.Contains(ro, o) {
			more = append(more, o)
		}
	}
	return more
}

// otherOptions returns the options of a path rule as String writes them,
// except mode= and owner=, which grantsMore compares by meaning.
func otherOptions(r Rule) []string {
	_, rest, err := splitModesLine(r.String())
	if err != nil {
		return nil
	}
	_, opts, err := splitPath(rest)
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range strings.Fields(opts) {
		if !strings.HasPrefix(o, "mode=") && !strings.HasPrefix(o, "owner=") {
			out = append(out, o)
		}
	}
	return out
}
