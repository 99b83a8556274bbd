package remote

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestFromPatterns(t *testing.T) {
	tests := []struct {
		list  string
		allow []string
		deny  []string
	}{
		{"10.0.0.0/8", []string{"10.1.2.3", "::ffff:10.0.0.1"}, []string{"11.0.0.1", "127.0.0.1", "::1"}},
		{"192.168.1.7", []string{"192.168.1.7"}, []string{"192.168.1.70", "192.168.1.8"}},
		{"192.168.1.*", []string{"192.168.1.7", "192.168.1.254"}, []string{"192.168.10.1"}},
		{"192.168.1.?", []string{"192.168.1.7"}, []string{"192.168.1.70"}},
		{"!10.0.0.5,10.0.0.0/24", []string{"10.0.0.4"}, []string{"10.0.0.5", "10.0.1.4"}},
		{"10.0.0.0/24,!10.0.0.5", []string{"10.0.0.4"}, []string{"10.0.0.5"}},
		{"!10.0.0.0/8,*", []string{"192.0.2.1", "2001:db8::1"}, []string{"10.9.9.9"}},
		{"!192.0.2.1", nil, []string{"192.0.2.1", "192.0.2.2"}}, // negation alone allows nobody
		{"2001:db8::/32,::1", []string{"2001:db8:0:1::5", "::1"}, []string{"2001:db9::1", "127.0.0.1"}},
		{"2001:DB8::*", []string{"2001:db8::7"}, []string{"2001:db9::7"}},
	}
	for _, tc := range tests {
		l, err := parseFromList(tc.list)
		if err != nil {
			t.Errorf("from=%q: %v", tc.list, err)
			continue
		}
		for _, a := range tc.allow {
			if !l.allows(netip.MustParseAddr(a)) {
				t.Errorf("from=%q refuses %s", tc.list, a)
			}
		}
		for _, a := range tc.deny {
			if l.allows(netip.MustParseAddr(a)) {
				t.Errorf("from=%q allows %s", tc.list, a)
			}
		}
	}
}

func TestFromPatternErrors(t *testing.T) {
	for list, want := range map[string]string{
		"10.0.0.1/8":             "has bits set past its mask; write 10.0.0.0/8",
		"bastion.example.com":    "names a host",
		"*.example.com,10.0.0.1": "names a host",
		"!badhost":               "names a host",
		"10.0.0.0/33":            "not a CIDR block",
		"10.0.0.1,,10.0.0.2":     "an empty pattern",
	} {
		if _, err := parseFromList(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("from=%q: %v, want an error saying %q", list, err, want)
		}
	}
}

func TestExpiryTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	tests := map[string]time.Time{
		"20300102":        time.Date(2030, 1, 2, 0, 0, 0, 0, berlin),
		"203001021504":    time.Date(2030, 1, 2, 15, 4, 0, 0, berlin),
		"20300102150405":  time.Date(2030, 1, 2, 15, 4, 5, 0, berlin),
		"20300102150405Z": time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC),
		"203001021504UTC": time.Date(2030, 1, 2, 15, 4, 0, 0, time.UTC),
	}
	for v, want := range tests {
		got, err := parseExpiry(v, berlin)
		if err != nil || !got.Equal(want) {
			t.Errorf("expiry-time=%q: %v %v, want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"2030", "2030010", "20301301", "20300230", "2030-01-02", "20300102T1504"} {
		if _, err := parseExpiry(v, berlin); err == nil {
			t.Errorf("expiry-time=%q accepted", v)
		}
	}
}
