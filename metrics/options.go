package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// only returns an error naming the first key of opts that is not in allowed.
func (o Options) only(allowed ...string) error {
	var unknown []string
	for k := range o {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(allowed) == 0 {
		return fmt.Errorf("unknown option %q (this judge takes none)", unknown[0])
	}
	return fmt.Errorf("unknown option %q (want one of %s)", unknown[0], strings.Join(allowed, ", "))
}

// float reads a finite number option, or def when absent.
func (o Options) float(key string, def float64) (float64, error) {
	v, ok := o[key]
	if !ok {
		return def, nil
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case uint64:
		f = float64(n)
	default:
		return 0, fmt.Errorf("option %s: want a number, got %v", key, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("option %s: want a finite number, got %v", key, v)
	}
	return f, nil
}

// int reads a whole-number option, or def when absent.
func (o Options) int(key string, def int) (int, error) {
	f, err := o.float(key, float64(def))
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fmt.Errorf("option %s: want a whole number, got %v", key, o[key])
	}
	return int(f), nil
}

// string reads a text option, or def when absent.
func (o Options) string(key, def string) (string, error) {
	v, ok := o[key]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("option %s: want text, got %v", key, v)
	}
	return s, nil
}

// bool reads a true/false option, or def when absent.
func (o Options) bool(key string, def bool) (bool, error) {
	v, ok := o[key]
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("option %s: want true or false, got %v", key, v)
	}
	return b, nil
}

// choice reads a text option that must be one of allowed, or def when absent.
func (o Options) choice(key, def string, allowed ...string) (string, error) {
	s, err := o.string(key, def)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", fmt.Errorf("option %s: want one of %s, got %q", key, strings.Join(allowed, ", "), s)
	}
	return s, nil
}

// between reads a number option that must lie in (lo, hi) — or [lo, hi] where closed says so —
// or def when absent.
func (o Options) between(key string, def, lo, hi float64, closed bool) (float64, error) {
	f, err := o.float(key, def)
	if err != nil {
		return 0, err
	}
	if f < lo || f > hi || (!closed && (f == lo || f == hi)) {
		l, r := "(", ")"
		if closed {
			l, r = "[", "]"
		}
		return 0, fmt.Errorf("option %s: want a number in %s%v, %v%s, got %v", key, l, lo, hi, r, f)
	}
	return f, nil
}

// flatten turns nested mappings into dotted keys ({"effectSize": {"measure": "cles"}} becomes
// {"effectSize.measure": "cles"}), so nested options are read and named like flat ones.
func (o Options) flatten() Options {
	out := Options{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			switch sub := v.(type) {
			case map[string]any:
				walk(prefix+k+".", sub)
			case Options:
				walk(prefix+k+".", sub)
			case map[any]any:
				conv := make(map[string]any, len(sub))
				for sk, sv := range sub {
					conv[fmt.Sprint(sk)] = sv
				}
				walk(prefix+k+".", conv)
			default:
				out[prefix+k] = v
			}
		}
	}
	walk("", o)
	return out
}
