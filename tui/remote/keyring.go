// Package remote serves perch's TUI over SSH: every session gets its own model, renderer and
// size, bound to the one engine, and only the keys it was given may connect. Operators'
// keys may steer the rollout; viewers' keys may only watch (the engine refuses their commands
// too).
package remote

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/engine"
)

// Identity is someone allowed in: the name written as the comment of their key, their role,
// and their key's fingerprint (SHA256:…) as the audit trail records it.
type Identity struct {
	Name        string
	Role        engine.Role
	Fingerprint string
	key         gossh.PublicKey
	opts        keyOptions
}

// admits reports why a client at addr may not use this key at now, or nil if it may: the
// key's from= and expiry-time= options.
func (id Identity) admits(addr net.Addr, now time.Time) error {
	if !id.opts.expires.IsZero() && now.After(id.opts.expires) {
		return fmt.Errorf("the key expired at %s (expiry-time)", id.opts.expires.Format(time.RFC3339))
	}
	if id.opts.from != nil {
		ip, ok := remoteAddr(addr)
		if !ok || !id.opts.from.allows(ip) {
			return fmt.Errorf("%s is not in from=%q", addr, id.opts.from.text)
		}
	}
	return nil
}

// Keyring is the set of keys allowed to connect.
type Keyring struct {
	ids []Identity
}

// LoadKeyring reads operators' and (optionally) viewers' keys from OpenSSH authorized_keys
// files. Every key needs a comment naming its owner; a key listed in both files is an error,
// since its role would be ambiguous. Of the options a line may start with, from= and
// expiry-time= are enforced as sshd does, and those that only take away what perch never
// offers are accepted; a line with any other option (command=, cert-authority, …), or a
// certificate, is refused, naming the file and line.
func LoadKeyring(operatorFile, viewerFile string) (*Keyring, error) {
	k := &Keyring{}
	if err := k.load(operatorFile, engine.RoleOperator); err != nil {
		return nil, err
	}
	if viewerFile != "" {
		if err := k.load(viewerFile, engine.RoleViewer); err != nil {
			return nil, err
		}
	}
	if len(k.ids) == 0 {
		return nil, fmt.Errorf("%s: no keys: nobody could connect", operatorFile)
	}
	return k, nil
}

func (k *Keyring) load(path string, role engine.Role) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s keys: %w", role, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, comment, options, _, err := gossh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			return fmt.Errorf("%s:%d: not an authorized_keys line: %v", path, line, err)
		}
		if _, ok := key.(*gossh.Certificate); ok {
			return fmt.Errorf("%s:%d: %s is a certificate; perch accepts plain public keys only", path, line, key.Type())
		}
		opts, err := parseKeyOptions(options, time.Local)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		name := strings.TrimSpace(comment)
		if name == "" {
			return fmt.Errorf("%s:%d: key %s has no comment: the comment names the person, for the audit trail", path, line, gossh.FingerprintSHA256(key))
		}
		if prev, ok := k.Lookup(key); ok {
			return fmt.Errorf("%s:%d: key of %s is already listed (as %s, %s)", path, line, name, prev.Name, prev.Role)
		}
		k.ids = append(k.ids, Identity{Name: name, Role: role, Fingerprint: gossh.FingerprintSHA256(key), key: key, opts: opts})
	}
	return sc.Err()
}

// Lookup finds the identity of a key.
func (k *Keyring) Lookup(key gossh.PublicKey) (Identity, bool) {
	if k == nil || key == nil {
		return Identity{}, false
	}
	raw := key.Marshal()
	for _, id := range k.ids {
		if bytes.Equal(id.key.Marshal(), raw) {
			return id, true
		}
	}
	return Identity{}, false
}

// Counts reports how many operators and viewers the keyring holds.
func (k *Keyring) Counts() (operators, viewers int) {
	for _, id := range k.ids {
		if id.Role == engine.RoleOperator {
			operators++
		} else {
			viewers++
		}
	}
	return operators, viewers
}
