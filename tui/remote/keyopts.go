package remote

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"
)

// keyOptions are the authorized_keys options perch enforces for one key.
type keyOptions struct {
	from    *fromList // nil: any address
	expires time.Time // zero: never
}

// Options perch accepts without doing anything: each only takes away something perch never
// offers (forwarding of ports, agents or X11, ~/.ssh/rc, which ports a forwarding may use).
// `pty` is accepted because every perch session has one; `restrict` is accepted with `pty`,
// since it then leaves exactly what perch gives: a terminal and nothing else.
var harmlessOptions = map[string]bool{
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
	"permitopen":          true,
	"permitlisten":        true,
	"pty":                 true,
	"restrict":            true,
}

// parseKeyOptions reads the options of one authorized_keys line. It refuses any option perch
// does not enforce, so a line never reads as more restricted than it is.
func parseKeyOptions(raw []string, loc *time.Location) (keyOptions, error) {
	var opts keyOptions
	seen := map[string]bool{}
	for _, o := range raw {
		name, value, hasValue := strings.Cut(o, "=")
		name = strings.ToLower(name)
		if hasValue {
			v, err := unquote(value)
			if err != nil {
				return keyOptions{}, fmt.Errorf("option %s=: %w", name, err)
			}
			value = v
		}
		seen[name] = true
		switch {
		case name == "from" && hasValue:
			if opts.from != nil {
				return keyOptions{}, errors.New("option from= is given twice; list every pattern in one from=\"…\"")
			}
			l, err := parseFromList(value)
			if err != nil {
				return keyOptions{}, fmt.Errorf("option from=%q: %w", value, err)
			}
			opts.from = l
		case name == "expiry-time" && hasValue:
			t, err := parseExpiry(value, loc)
			if err != nil {
				return keyOptions{}, fmt.Errorf("option expiry-time=%q: %w", value, err)
			}
			if !opts.expires.IsZero() {
				return keyOptions{}, errors.New("option expiry-time= is given twice")
			}
			opts.expires = t
		case (name == "from" || name == "expiry-time") && !hasValue:
			return keyOptions{}, fmt.Errorf("option %s needs a value: %s=\"…\"", name, name)
		case harmlessOptions[name] && (hasValue == (name == "permitopen" || name == "permitlisten")):
		case name == "no-pty":
			return keyOptions{}, errors.New("option no-pty leaves this key no terminal, and perch is a terminal UI; remove the key or the option")
		default:
			shown := name
			if hasValue {
				shown += "="
			}
			return keyOptions{}, fmt.Errorf("option %s is not supported by perch; remove it", shown)
		}
	}
	if seen["restrict"] && !seen["pty"] {
		return keyOptions{}, errors.New("option restrict without pty leaves this key no terminal, and perch is a terminal UI; write restrict,pty")
	}
	return opts, nil
}

// unquote reads an option's value: "…" with \" for a quote, as sshd writes them.
func unquote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New(`the value must be in double quotes`)
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// parseExpiry reads sshd's expiry-time: YYYYMMDD[HHMM[SS]] in local time, or in UTC with a
// Z or UTC suffix. A date alone means its midnight.
func parseExpiry(v string, loc *time.Location) (time.Time, error) {
	s := v
	upper := strings.ToUpper(s)
	switch {
	case strings.HasSuffix(upper, "UTC"):
		s, loc = s[:len(s)-3], time.UTC
	case strings.HasSuffix(upper, "Z"):
		s, loc = s[:len(s)-1], time.UTC
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(s)]
	if !ok {
		return time.Time{}, errors.New("want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (local time; append Z for UTC)")
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, errors.New("not a valid date and time (YYYYMMDD[HHMM[SS]], local time; append Z for UTC)")
	}
	return t, nil
}

// fromList is a from="…" pattern list, as sshd matches it against the client's address:
// patterns separated by commas, each a CIDR block, an address, or a wildcard pattern (* and ?)
// over the address as text, and any of them negated with a leading !. An address is allowed
// when it matches some pattern and no negated one. perch does no DNS lookups (as sshd with
// UseDNS no), so a pattern that can only name a host is refused when the keys are loaded.
type fromList struct {
	patterns []fromPattern
	text     string
}

type fromPattern struct {
	negated  bool
	prefix   netip.Prefix // valid for a CIDR block or an address
	wildcard string       // else a pattern over the address's text
}

func parseFromList(v string) (*fromList, error) {
	l := &fromList{text: v}
	for _, p := range strings.Split(v, ",") {
		fp := fromPattern{}
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			fp.negated, p = true, rest
		}
		switch {
		case p == "":
			return nil, errors.New("an empty pattern")
		case strings.Contains(p, "/"):
			prefix, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("%s is not a CIDR block", p)
			}
			if prefix.Masked() != prefix {
				return nil, fmt.Errorf("%s has bits set past its mask; write %s", p, prefix.Masked())
			}
			fp.prefix = prefix
		default:
			if addr, err := netip.ParseAddr(p); err == nil {
				fp.prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
				break
			}
			if strings.Trim(strings.ToLower(p), "0123456789abcdef.:*?") != "" {
				return nil, fmt.Errorf("%s names a host: perch matches client addresses only (it does no DNS lookups); use addresses, CIDR blocks or wildcards over addresses", p)
			}
			if _, err := path.Match(strings.ToLower(p), ""); err != nil {
				return nil, fmt.Errorf("%s is not a pattern", p)
			}
			fp.wildcard = strings.ToLower(p)
		}
		l.patterns = append(l.patterns, fp)
	}
	return l, nil
}

// allows reports whether a client at addr may use the key.
func (l *fromList) allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	text := addr.String()
	allowed := false
	for _, p := range l.patterns {
		var match bool
		if p.prefix.IsValid() {
			match = p.prefix.Contains(addr)
		} else {
			match, _ = path.Match(p.wildcard, text) // '/' never occurs in an address
		}
		if match && p.negated {
			return false
		}
		allowed = allowed || match
	}
	return allowed
}

// remoteAddr is the IP address of a client.
func remoteAddr(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		if addr, ok := netip.AddrFromSlice(t.IP); ok {
			return addr.Unmap(), true
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
