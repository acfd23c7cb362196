package bastion

import (
	"net"
	"testing"
)

// TestHostOf: the source that audit events and the fail limiter use,
// from a net.Addr and from net/http's RemoteAddr text alike.
func TestHostOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:2222", "192.0.2.1"},
		{"[2001:db8::1]:22", "2001:db8::1"},
		{"[::1]:443", "::1"},
		{"localhost:80", "localhost"},
		{"pipe", "pipe"}, // net.Pipe's address
		{"2001:db8::1", "2001:db8::1"},
		{"", ""},
	} {
		if got := hostOfString(tc.addr); got != tc.want {
			t.Errorf("hostOfString(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := hostOf(&net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 22}); got != "2001:db8::2" {
		t.Errorf("hostOf(TCPAddr) = %q", got)
	}
	a, _ := net.Pipe()
	defer a.Close()
	if got := hostOf(a.RemoteAddr()); got != "pipe" {
		t.Errorf("hostOf(pipe) = %q", got)
	}
	if got := hostOf(nil); got != "" {
		t.Errorf("hostOf(nil) = %q", got)
	}
}
