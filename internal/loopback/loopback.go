// Package loopback checks that an address stays on this machine: bastion
// serves plain HTTP and its development issuer only on loopback addresses.
package loopback

import (
	"fmt"
	"net"
)

// Require returns an error unless addr (host:port) names a loopback
// address. Of names, only "localhost" is accepted, without resolving it.
func Require(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("is only allowed on a loopback address, not %q", addr)
	}
	return nil
}
