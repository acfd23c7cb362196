package masking

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testKeys are real keys in the formats tools print, generated once.
var testKeys = sync.OnceValue(func() (k struct {
	private map[string]string // name -> PEM
	public  map[string]string
}) {
	k.private, k.public = map[string]string{}, map[string]string{}
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	k.private["pkcs1 rsa"] = enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk))
	der, _ := x509.MarshalPKCS8PrivateKey(rk)
	k.private["pkcs8 rsa"] = enc("PRIVATE KEY", der)
	der, _ = x509.MarshalECPrivateKey(ek)
	k.private["sec1 p256"] = enc("EC PRIVATE KEY", der)
	der, _ = x509.MarshalECPrivateKey(ek384)
	k.private["sec1 p384"] = enc("EC PRIVATE KEY", der)
	der, _ = x509.MarshalPKCS8PrivateKey(ek)
	k.private["pkcs8 ec"] = enc("PRIVATE KEY", der)
	der, _ = x509.MarshalPKCS8PrivateKey(edk)
	k.private["pkcs8 ed25519"] = enc("PRIVATE KEY", der)
	for name, key := range map[string]any{"openssh ed25519": edk, "openssh rsa": rk} {
		b, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			panic(err)
		}
		k.private[name] = string(pem.EncodeToMemory(b))
	}

	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	for name, key := range map[string]any{"rsa": rk, "ec": ek, "ed25519": edk} {
		pub := key.(crypto.Signer).Public()
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
		if err != nil {
			panic(err)
		}
		k.public["certificate "+name] = enc("CERTIFICATE", der)
		der, _ = x509.MarshalPKIXPublicKey(pub)
		k.public["pkix "+name] = enc("PUBLIC KEY", der)
		der, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: tmpl.Subject}, key)
		if err != nil {
			panic(err)
		}
		k.public["csr "+name] = enc("CERTIFICATE REQUEST", der)
	}
	k.public["pkcs1 public"] = enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rk.PublicKey))
	return k
})

// headless are ways to print a key file without its header.
var headless = []struct {
	name string
	f    func(pem string) string
}{
	{"sed 1d", func(p string) string { _, rest, _ := strings.Cut(p, "\n"); return rest }},
	{"grep -v PRIVATE", func(p string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(p, "\n") {
			if !strings.Contains(l, "PRIVATE") && !strings.Contains(l, "-----") {
				b.WriteString(l)
			}
		}
		return b.String()
	}},
	{"body on one line", func(p string) string {
		lines := strings.Split(strings.TrimSpace(p), "\n")
		return strings.Join(lines[1:len(lines)-1], "") + "\n"
	}},
	{"indented", func(p string) string {
		lines := strings.Split(strings.TrimSpace(p), "\n")
		return "key: |\n    " + strings.Join(lines[1:len(lines)-1], "\n    ") + "\n"
	}},
	{"crlf", func(p string) string {
		_, rest, _ := strings.Cut(p, "\n")
		return strings.ReplaceAll(rest, "\n", "\r\n")
	}},
}

func bodyLines(p string) []string {
	var out []string
	for _, l := range strings.Split(p, "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func TestKeyBodyWithoutHeader(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for name, p := range k.private {
		for _, h := range headless {
			t.Run(name+"/"+h.name, func(t *testing.T) {
				t.Parallel()
				in := "$ cat key\n" + h.f(p) + "$ "
				for _, chunks := range [][]string{{in}, cut(in, []byte{7, 61, 200, 3})} {
					got := stream(Default(), chunks)
					for _, l := range bodyLines(p) {
						if strings.Contains(got, l[:16]) {
							t.Fatalf("body line %q in output\n%s", l, got)
						}
					}
					if !strings.Contains(got, mk("private-key")) || !strings.HasPrefix(got, "$ cat key\n") || !strings.HasSuffix(got, "$ ") {
						t.Fatalf("output %q", got)
					}
				}
			})
		}
	}
}

func TestKeyBodyPublicUnchanged(t *testing.T) {
	t.Parallel()
	k := testKeys()
	for name, p := range k.public {
		for _, h := range headless[:1] {
			in := h.f(p)
			if got := maskBytes(t, in); got != in {
				t.Errorf("%s/%s: changed\n in %q\ngot %q", name, h.name, in, got)
			}
		}
		if got := maskBytes(t, p); got != p {
			t.Errorf("%s: changed with its header", name)
		}
	}
	// Base64 of other data that begins like DER.
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, 300)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0], b[1] = 0x30, 0x82
		enc := base64.StdEncoding.EncodeToString(b)
		var w strings.Builder
		for len(enc) > 64 {
			w.WriteString(enc[:64] + "\n")
			enc = enc[64:]
		}
		in := w.String() + enc + "\n"
		if got := maskBytes(t, in); got != in {
			t.Fatalf("random DER-like base64 masked:\n%s", in)
		}
	}
}

func TestDERPrivateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		der  []byte
		want bool
	}{
		{"pkcs1", []byte{0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00}, true},
		{"sec1", []byte{0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20, 0x11}, true},
		{"pkcs8", []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}, true},
		{"pkcs8 v2", []byte{0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}, true},
		{"encrypted pkcs8", []byte{0x30, 0x82, 0x01, 0x00, 0x30, 0x49, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}, true},
		{"certificate", []byte{0x30, 0x82, 0x01, 0x00, 0x30, 0x81, 0xf3, 0xa0, 0x03, 0x02, 0x01, 0x02}, false},
		{"spki", []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, false},
		{"pkcs1 public", []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc1}, false},
		{"not der", []byte("hello world, this is text"), false},
		{"long form not minimal", []byte{0x30, 0x81, 0x10, 0x02, 0x01, 0x00, 0x02, 0x01}, false},
		{"cut", []byte{0x30, 0x82}, false},
	} {
		if got := derPrivateKey(tc.der); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
}
