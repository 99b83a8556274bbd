// Package flagd sets a boolean feature flag's percentage rollout in a flagd flag definition
// file: the flag's targeting becomes a fractional split between its true and false variants.
// The file is rewritten whole and atomically (a temporary file beside it, synced, renamed over
// it), so flagd, which watches it, never reads half a file. Everything but the flag's
// targeting is kept as written, in its order.
package flagd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Client reads and rewrites one flag definition file.
type Client struct {
	file string
	mu   sync.Mutex // one rewrite at a time
}

// New makes a client of the flag definition file at path; it reads nothing until asked.
func New(path string) (*Client, error) {
	if path == "" {
		return nil, errors.New("flagd: no file")
	}
	return &Client{file: path}, nil
}

// String says what the client sets, for perch traffic.
func (c *Client) String() string { return "flagd file " + c.file }

// saved is what ReadFlag records of a flag before perch changes it: its targeting as written,
// or none.
type saved struct {
	Targeting json.RawMessage `json:"targeting,omitempty"`
}

// flagDef is the part of a flag definition perch reads.
type flagDef struct {
	State          string                     `json:"state"`
	Variants       map[string]json.RawMessage `json:"variants"`
	DefaultVariant string                     `json:"defaultVariant"`
}

// doc is a flag definition file with the flag perch works on picked out.
type doc struct {
	top, flags, flag object
	def              flagDef
	on, off          string // the variants whose values are true and false
}

func (c *Client) load(key string) (*doc, error) {
	data, err := os.ReadFile(c.file)
	if err != nil {
		return nil, fmt.Errorf("flagd: %w", err)
	}
	d := &doc{}
	if err := json.Unmarshal(data, &d.top); err != nil {
		return nil, fmt.Errorf("flagd: %s is not a JSON flag definition file (perch rewrites JSON files): %w", c.file, err)
	}
	raw, ok := d.top.get("flags")
	if !ok {
		return nil, fmt.Errorf("flagd: %s has no \"flags\"", c.file)
	}
	if err := json.Unmarshal(raw, &d.flags); err != nil {
		return nil, fmt.Errorf("flagd: %s: \"flags\": %w", c.file, err)
	}
	raw, ok = d.flags.get(key)
	if !ok {
		return nil, fmt.Errorf("flagd: %s has no flag %q", c.file, key)
	}
	if err := json.Unmarshal(raw, &d.flag); err != nil {
		return nil, fmt.Errorf("flagd: %s: flag %s: %w", c.file, key, err)
	}
	if err := json.Unmarshal(raw, &d.def); err != nil {
		return nil, fmt.Errorf("flagd: %s: flag %s: %w", c.file, key, err)
	}
	for name, v := range d.def.Variants {
		switch strings.TrimSpace(string(v)) {
		case "true":
			d.on = name
		case "false":
			d.off = name
		}
	}
	if len(d.def.Variants) != 2 || d.on == "" || d.off == "" {
		return nil, fmt.Errorf("flagd: flag %s is not a boolean flag (two variants, true and false): perch sets the share of users a feature is on for", key)
	}
	return d, nil
}

// split reads a targeting that is a fractional split between the flag's two variants: the
// bucketing expression given first (nil if none) and the true variant's percent (-1 when not
// a whole percent). ok is false for any other targeting.
func (d *doc) split(targeting json.RawMessage) (bucket json.RawMessage, percent int, ok bool) {
	var t map[string][]json.RawMessage
	if json.Unmarshal(targeting, &t) != nil || len(t) != 1 || t["fractional"] == nil {
		return nil, 0, false
	}
	args := t["fractional"]
	if len(args) > 0 && !bytes.HasPrefix(bytes.TrimSpace(args[0]), []byte("[")) {
		bucket, args = args[0], args[1:]
	}
	weights := map[string]float64{}
	total := 0.0
	for _, a := range args {
		var pair []json.RawMessage
		var name string
		var w float64
		if json.Unmarshal(a, &pair) != nil || len(pair) != 2 || json.Unmarshal(pair[0], &name) != nil || json.Unmarshal(pair[1], &w) != nil || w < 0 {
			return nil, 0, false
		}
		if name != d.on && name != d.off {
			return nil, 0, false
		}
		weights[name] += w
		total += w
	}
	if total <= 0 {
		return nil, 0, false
	}
	p := weights[d.on] * 100 / total
	if p != float64(int(p)) {
		return bucket, -1, true
	}
	return bucket, int(p), true
}

func isEmpty(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	return s == "" || s == "null" || s == "{}"
}

// ReadFlag is the percent of users the flag is on for (0 when disabled, 100 or 0 by its
// default variant without targeting, the split of a fractional targeting, -1 for targeting
// of any other kind), and its targeting as written, for RestoreFlag.
func (c *Client) ReadFlag(_ context.Context, key string) (int, json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.load(key)
	if err != nil {
		return 0, nil, err
	}
	targeting, has := d.flag.get("targeting")
	var st saved
	if has {
		st.Targeting = targeting
	}
	state, _ := json.Marshal(st)
	switch _, p, ok := d.split(targeting); {
	case strings.EqualFold(d.def.State, "DISABLED"):
		return 0, state, nil
	case !has || isEmpty(targeting):
		if d.def.DefaultVariant == d.on {
			return 100, state, nil
		}
		return 0, state, nil
	case ok:
		return p, state, nil
	}
	return -1, state, nil
}

// SetFlagPercent makes the flag's targeting a fractional split: percent of users get its true
// variant, the rest its false one, bucketed as its split was (flagd's default otherwise). A
// disabled flag, or one with targeting rules other than a split, is refused: perch would
// overwrite what someone wrote.
func (c *Client) SetFlagPercent(_ context.Context, key string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("flagd: flag %s: %d%% is outside 0..100", key, percent)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.load(key)
	if err != nil {
		return err
	}
	if strings.EqualFold(d.def.State, "DISABLED") {
		return fmt.Errorf("flagd: flag %s is DISABLED in %s: enable it for its split to count", key, c.file)
	}
	targeting, has := d.flag.get("targeting")
	bucket, p, ok := d.split(targeting)
	switch {
	case ok && p == percent:
		return nil
	case !ok && has && !isEmpty(targeting):
		return fmt.Errorf("flagd: flag %s in %s has targeting rules that are not a fractional split; perch will not overwrite them", key, c.file)
	}
	args := []any{}
	if bucket != nil {
		args = append(args, bucket)
	}
	args = append(args, []any{d.on, percent}, []any{d.off, 100 - percent})
	next, err := json.Marshal(map[string]any{"fractional": args})
	if err != nil {
		return err
	}
	d.flag.set("targeting", next)
	return c.save(d, key)
}

// RestoreFlag puts the flag's targeting back as ReadFlag found it.
func (c *Client) RestoreFlag(_ context.Context, key string, state json.RawMessage) error {
	var was saved
	if err := json.Unmarshal(state, &was); err != nil {
		return fmt.Errorf("flagd: flag %s: the recorded targeting is unreadable: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.load(key)
	if err != nil {
		return err
	}
	now, has := d.flag.get("targeting")
	switch {
	case was.Targeting == nil && !has:
		return nil
	case was.Targeting == nil:
		d.flag.del("targeting")
	case has && bytes.Equal(now, was.Targeting):
		return nil
	default:
		d.flag.set("targeting", was.Targeting)
	}
	return c.save(d, key)
}

// save writes the document back with the flag changed.
func (c *Client) save(d *doc, key string) error {
	flag, err := json.Marshal(d.flag)
	if err != nil {
		return err
	}
	d.flags.set(key, flag)
	flags, err := json.Marshal(d.flags)
	if err != nil {
		return err
	}
	d.top.set("flags", flags)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d.top); err != nil {
		return err
	}
	return writeAtomic(c.file, b.Bytes())
}

// writeAtomic replaces the file at path (the file a symlink points to) with data: a
// temporary file in the same directory, written, synced and given the old file's mode, is
// renamed over it, and the directory synced, so a reader sees the old file or the new one.
func writeAtomic(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".perch-*")
	if err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("flagd: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("flagd: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// object is a JSON object with its members in the order written, so a rewrite leaves the
// rest of the file in its order.
type object []member

type member struct {
	key   string
	value json.RawMessage
}

func (o *object) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("want a JSON object")
	}
	*o = (*o)[:0]
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("%q is given twice", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*o = append(*o, member{key, v})
	}
	_, err := dec.Token()
	return err
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o *object) set(key string, value json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, member{key, value})
}

func (o *object) del(key string) {
	out := (*o)[:0]
	for _, m := range *o {
		if m.key != key {
			out = append(out, m)
		}
	}
	*o = out
}
