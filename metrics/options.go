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
