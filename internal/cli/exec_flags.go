//go:build linux

package cli

import (
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/privsep-go/privsep/internal/trampoline"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// landlockSystemDirs stay readable and executable under --landlock, those
// of them that exist.
var landlockSystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache"}

// landlockFlags are the --landlock options.
type landlockFlags struct {
	on                 bool
	ro, rw             []string
	bind, connect      []uint16
	anyTCP, bestEffort bool
}

func (l *landlockFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.on, "landlock", false, "restrict CMD with Landlock: files, TCP, abstract sockets, signals")
	path := func(dst *[]string) func(string) error {
		return func(s string) error {
			s = absolute(s)
			if !filepath.IsAbs(s) {
				return fmt.Errorf("%q is not an absolute path", s)
			}
			*dst, l.on = append(*dst, s), true
			return nil
		}
	}
	port := func(dst *[]uint16) func(string) error {
		return func(s string) error {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				return fmt.Errorf("%q is not a TCP port (0 to 65535)", s)
			}
			*dst, l.on = append(*dst, uint16(n)), true
			return nil
		}
	}
	fs.Func("landlock-ro", "with --landlock, let CMD read and execute beneath `PATH` too; repeatable", path(&l.ro))
	fs.Func("landlock-rw", "with --landlock, let CMD read, write, create and remove beneath `PATH`; repeatable", path(&l.rw))
	fs.Func("landlock-bind", "with --landlock, let CMD bind TCP `PORT`; repeatable", port(&l.bind))
	fs.Func("landlock-connect", "with --landlock, let CMD connect to TCP `PORT`; repeatable", port(&l.connect))
	fs.BoolVar(&l.anyTCP, "landlock-any-tcp", false, "with --landlock, leave TCP unrestricted")
	fs.BoolVar(&l.bestEffort, "landlock-best-effort", false, "with --landlock, apply what the kernel can and go on")
}

// config is the Landlock configuration for CMD; parent.Exec adds CMD
// itself, and this binary, which runs once more as the trampoline.
func (l *landlockFlags) config() parent.LandlockConfig {
	var ro []string
	for _, d := range landlockSystemDirs {
		if _, err := os.Stat(d); err == nil {
			ro = append(ro, d)
		}
	}
	return parent.LandlockConfig{
		ReadOnly:   append(ro, l.ro...),
		ReadWrite:  l.rw,
		BindTCP:    l.bind,
		ConnectTCP: l.connect,
		AnyTCP:     l.anyTCP,
		BestEffort: l.bestEffort,
	}
}

// listenSpec is one --listen.
type listenSpec struct {
	name, network, addr string
	fd                  int
}

func parseListenSpec(s string) (listenSpec, error) {
	l := listenSpec{fd: -1}
	rest := s
	if i := strings.IndexByte(s, '='); i > 0 && !strings.Contains(s[:i], ":") {
		l.name, rest = s[:i], s[i+1:]
	}
	r, err := policy.ParseListen(absoluteListen(rest))
	if err != nil {
		return l, fmt.Errorf("--listen %q: %w", s, err)
	}
	l.network, l.addr = r.Network, r.Addr
	if l.name == "" {
		l.name = l.network
	}
	return l, nil
}

// openSpec is one --open.
type openSpec struct {
	fd    int // -1 until numbered
	modes string
	path  string
	flags int
}

func parseOpenSpec(s string) (openSpec, error) {
	o := openSpec{fd: -1, modes: "r"}
	rest := s
	if i := strings.IndexByte(s, '='); i > 0 && !strings.Contains(s[:i], "/") {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > trampoline.MaxFD() {
			return o, fmt.Errorf("--open %q: %q is not a descriptor number from 0 to %d (RLIMIT_NOFILE)", s, s[:i], trampoline.MaxFD())
		}
		o.fd, rest = n, s[i+1:]
	}
	r, err := policy.ParseRule(absoluteRule(rest))
	if err != nil {
		return o, fmt.Errorf("--open %q: %w", s, err)
	}
	if r.Tree {
		return o, fmt.Errorf("--open %q: a path to open, not a tree", s)
	}
	o.path, o.modes = r.Path, r.Modes.String()
	switch {
	case r.Modes&policy.Read != 0 && r.Modes&(policy.Write|policy.Append) != 0:
		o.flags = os.O_RDWR
	case r.Modes&(policy.Write|policy.Append) != 0:
		o.flags = os.O_WRONLY
	case r.Modes&policy.Read != 0:
		o.flags = os.O_RDONLY
	default:
		return o, fmt.Errorf("--open %q: modes %q open nothing (want r, w, rw or a)", s, o.modes)
	}
	if r.Modes&policy.Append != 0 {
		o.flags |= os.O_APPEND
	}
	if r.Modes&policy.Create != 0 {
		o.flags |= os.O_CREATE
	}
	return o, nil
}

// parseKeepFD parses a --keep-fd number: an open descriptor from 3 up that
// this process inherited, that is, one without close-on-exec (everything Go
// opens has it).
func parseKeepFD(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < firstPassedFD || n > trampoline.MaxFD() {
		return 0, fmt.Errorf("--keep-fd %q: not a descriptor number from %d to %d (0, 1 and 2 are always passed)", s, firstPassedFD, trampoline.MaxFD())
	}
	open, inherited := trampoline.Inherited(n)
	if !open {
		return 0, fmt.Errorf("--keep-fd %d: descriptor %d is not open", n, n)
	}
	if !inherited {
		return 0, fmt.Errorf("--keep-fd %d: descriptor %d is privsep's own, not one it inherited", n, n)
	}
	return n, nil
}

// checkKeepFDs refuses a --keep-fd number that privsep places a descriptor
// at, and one given twice.
func checkKeepFDs(keep []int, listens []listenSpec, opens []openSpec) error {
	placed := map[int]string{}
	for _, l := range listens {
		placed[l.fd] = "--listen " + l.network + ":" + l.addr
	}
	for _, o := range opens {
		placed[o.fd] = "--open " + o.path
	}
	seen := map[int]bool{}
	for _, n := range keep {
		if what, ok := placed[n]; ok {
			return fmt.Errorf("--keep-fd %d: descriptor %d is where %s goes", n, n, what)
		}
		if seen[n] {
			return fmt.Errorf("--keep-fd %d given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// withUserEnviron is env with HOME, USER, LOGNAME and SHELL those of uid.
func withUserEnviron(env []string, uid int) []string {
	env = slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "HOME" || k == "USER" || k == "LOGNAME" || k == "SHELL"
	})
	return append(env, userEnviron(uid)...)
}

// userEnviron returns HOME, USER, LOGNAME and SHELL for uid, from the
// password database: os/user gives the name and home, /etc/passwd the
// shell (os/user has no field for it). A uid with no entry gets HOME=/ and
// its number as its name; a user with no /etc/passwd line (from NSS
// elsewhere) gets /bin/sh.
func userEnviron(uid int) []string {
	id := strconv.Itoa(uid)
	name, home, shell := id, "/", "/bin/sh"
	if u, err := user.LookupId(id); err == nil {
		name, home = u.Username, u.HomeDir
		if home == "" {
			home = "/"
		}
	}
	if data, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) == 7 && f[0] == name && f[2] == id && f[6] != "" {
				shell = f[6]
				break
			}
		}
	}
	return []string{"HOME=" + home, "USER=" + name, "LOGNAME=" + name, "SHELL=" + shell}
}

// numberFDs numbers the descriptors to pass: --open numbers as given, then
// the --listen sockets and the unnumbered --open files, in that order,
// from the next free number from 3. A number given twice is an error.
func numberFDs(listens []listenSpec, opens []openSpec) error {
	used := map[int]bool{}
	for _, o := range opens {
		if o.fd >= 0 {
			if used[o.fd] {
				return fmt.Errorf("descriptor %d given twice", o.fd)
			}
			used[o.fd] = true
		}
	}
	next := firstPassedFD
	take := func() int {
		for used[next] {
			next++
		}
		used[next] = true
		return next
	}
	for i := range listens {
		listens[i].fd = take()
	}
	for i := range opens {
		if opens[i].fd < 0 {
			opens[i].fd = take()
		}
	}
	return nil
}

func dedupeStrings(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// impliedRules makes the policy of --open alone: one exact rule per path,
// with the union of the modes it is opened with.
func impliedRules(opens []openSpec) []string {
	var order []string
	modes := map[string]policy.Mode{}
	for _, o := range opens {
		r, _ := policy.ParseRule(o.modes + ":" + o.path)
		if _, ok := modes[o.path]; !ok {
			order = append(order, o.path)
		}
		modes[o.path] |= r.Modes
	}
	rules := make([]string, len(order))
	for i, p := range order {
		rules[i] = modes[p].String() + ":" + p
	}
	return rules
}
