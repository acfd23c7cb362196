package devoidc

import (
	"context"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

func TestRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:80"} {
		if i, err := Start(addr); err == nil {
			i.Close()
			t.Errorf("Start(%q) succeeded; want refusal", addr)
		}
	}
}

// TestTokenVerifies checks the issued token against go-oidc with discovery,
// as bastion's verifier does.
func TestTokenVerifies(t *testing.T) {
	t.Parallel()
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ctx := context.Background()
	raw, err := iss.Token(ctx, "demo-agent", []string{"agents"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := oidc.NewProvider(ctx, iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Verifier(&oidc.Config{ClientID: iss.ClientID()}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "demo-agent" {
		t.Fatalf("subject = %q, want demo-agent", tok.Subject)
	}
	if _, err := iss.Token(ctx, "", nil); err == nil {
		t.Fatal("empty subject accepted")
	}
}
