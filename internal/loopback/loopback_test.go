package loopback

import "testing"

func TestRequire(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:1": true, "[::1]:22": true, "localhost:0": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:22": false, "10.0.0.1:80": false,
		"example.com:443": false, "127.0.0.1": false, "": false,
	} {
		if err := Require(addr); (err == nil) != ok {
			t.Errorf("Require(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
