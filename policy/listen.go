package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Networks a listen rule may name, as Go's net package spells them; true
// for the datagram ones. It is the library's one list of them: parent's
// Listen and ListenPacket ask IsListenNetwork and IsPacketNetwork.
var listenNetworks = map[string]bool{
	"tcp": false, "tcp4": false, "tcp6": false,
	"udp": true, "udp4": true, "udp6": true,
	"unix": false,
}

// IsListenNetwork reports whether a listen rule may name network.
func IsListenNetwork(network string) bool {
	_, ok := listenNetworks[network]
	return ok
}

// IsPacketNetwork reports whether network is a listen network whose socket
// is a bound datagram socket rather than a listening stream one.
func IsPacketNetwork(network string) bool { return listenNetworks[network] }

// DefaultSocketMode is the mode of a unix socket file the opener creates
// when the rule does not say.
const DefaultSocketMode = 0o660

// listenString writes a listen rule as one line of the policy language:
//
//	listen tcp::443
//	listen unix:/run/app.sock mode=0600 owner=1000:1000 replace
func (r Rule) listenString() string {
	var b strings.Builder
	b.WriteString("listen ")
	r.writeTarget(&b, r.Network+":"+r.Addr)
	if r.Replace {
		b.WriteString(" replace")
	}
	return b.String()
}

// IsListen reports whether r is a listen rule.
func (r Rule) IsListen() bool { return r.Network != "" }

// ParseListen parses NET:ADDR, the --allow-listen form, into a listen rule.
func ParseListen(s string) (Rule, error) {
	network, addr, ok := strings.Cut(s, ":")
	if !ok {
		return Rule{}, &RuleError{Rule: s, Why: "want NET:ADDR, such as tcp::443 or unix:/run/app.sock"}
	}
	if err := CheckListenAddr(network, addr); err != nil {
		return Rule{}, &RuleError{Rule: s, Why: err.Error()}
	}
	return Rule{Network: network, Addr: addr, UID: NoOwner, GID: NoOwner}, nil
}

// CheckListenAddr reports whether network and addr are acceptable in a
// listen rule or request.
func CheckListenAddr(network, addr string) error {
	if !IsListenNetwork(network) {
		known := strings.Join(slices.Sorted(maps.Keys(listenNetworks)), ", ")
		return fmt.Errorf("unknown network %q (known: %s)", network, known)
	}
	if network == "unix" {
		if !strings.HasPrefix(addr, "/") {
			return fmt.Errorf("unix socket path %q must be absolute", addr)
		}
		if len(addr) > 107 {
			return fmt.Errorf("unix socket path is %d bytes, more than sockaddr_un holds (107)", len(addr))
		}
		if strings.IndexByte(addr, 0) >= 0 || !isClean(addr) || addr == "/" {
			return fmt.Errorf("unix socket path %q is not a clean file path", addr)
		}
		return nil
	}
	host, port, ok := splitHostPort(addr)
	if !ok {
		return fmt.Errorf("address %q: want HOST:PORT, with HOST empty, an IPv4 address or a bracketed IPv6 address", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		return fmt.Errorf("address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("address %q: host %q is not an IP address (names are not resolved)", addr, host)
	}
	switch {
	case strings.HasSuffix(network, "4") && !ip.Is4():
		return fmt.Errorf("address %q: %s needs an IPv4 address", addr, network)
	case strings.HasSuffix(network, "6") && !ip.Is6():
		return fmt.Errorf("address %q: %s needs an IPv6 address", addr, network)
	}
	return nil
}

// splitHostPort splits "host:port" and "[v6]:port" strictly.
func splitHostPort(addr string) (host, port string, ok bool) {
	if strings.HasPrefix(addr, "[") {
		i := strings.Index(addr, "]:")
		if i < 0 {
			return "", "", false
		}
		host, port = addr[1:i], addr[i+2:]
		return host, port, strings.Contains(host, ":")
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || strings.Contains(addr[:i], ":") {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// parseListenLine parses "listen NET:ADDR [mode=OCTAL] [owner=U[:G]]
// [replace]" (the text after "listen ").
func parseListenLine(line, rest string, res Resolver) (Rule, error) {
	bad := func(format string, args ...any) (Rule, error) {
		return Rule{}, &RuleError{Rule: line, Why: fmt.Sprintf(format, args...)}
	}
	rest = strings.TrimLeft(rest, " \t")
	spec, opts, err := splitPath(rest)
	if err != nil {
		return bad("%v", err)
	}
	r, err := ParseListen(spec)
	if err != nil {
		return bad("%v", err.(*RuleError).Why)
	}
	seen := map[string]bool{}
	for _, opt := range strings.Fields(opts) {
		k, v, hasValue := strings.Cut(opt, "=")
		if seen[k] {
			return bad("option %q given twice", k)
		}
		seen[k] = true
		if r.Network != "unix" {
			return bad("option %q applies to unix sockets only", k)
		}
		switch {
		case k == "replace" && !hasValue:
			r.Replace = true
		case k == "mode" && hasValue:
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || len(v) < 2 || v[0] != '0' || m&^0o777 != 0 || m == 0 {
				return bad("mode=%s: want permission bits in octal with a leading 0, such as 0660", v)
			}
			r.CreateMode = uint32(m)
		case k == "owner" && hasValue:
			if r.UID, r.GID, err = parseOwner(v, res); err != nil {
				return bad("owner=%s: %v", v, err)
			}
		default:
			return bad("unknown option %q (known for listen: mode=, owner=, replace)", opt)
		}
	}
	return r, nil
}

// CheckListen decides a listen request: it returns the listen rule that
// allows exactly network and addr, or a Refusal. It never allocates.
func (p *Policy) CheckListen(network, addr string) (Rule, error) {
	if err := CheckListenAddr(network, addr); err != nil {
		return Rule{}, errBadListen()
	}
	i, ok := p.listens[listenKey{network, addr}]
	if !ok {
		return Rule{}, errNoListenRule()
	}
	return p.rules[i], nil
}

// listenKey indexes listen rules by exactly what a request names.
type listenKey struct{ network, addr string }
