package masking

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// planted builds a text with secrets from every generator in random order,
// filler around them, and colour sequences inside some secrets. It returns
// the input, the expected output and the secrets that must not appear.
func planted(seed uint64) (in, want string, secrets []string) {
	r := rand.New(rand.NewPCG(seed, 7))
	var bi, bw strings.Builder
	n := 1 + r.IntN(4)
	for range n {
		p := generators[r.IntN(len(generators))](r)
		f := filler(r)
		bi.WriteString(f + "\n")
		bw.WriteString(f + "\n")
		for _, x := range p.parts {
			if !x.secret {
				bi.WriteString(x.text)
				bw.WriteString(x.text)
				continue
			}
			secrets = append(secrets, x.text)
			text := x.text
			if r.IntN(3) == 0 && len(text) > 2 {
				// grep --color inside the secret.
				k := 1 + r.IntN(len(text)-1)
				text = text[:k] + "\x1b[01;31m\x1b[K" + text[k:]
			}
			bi.WriteString(text)
			bw.WriteString(mk(p.kind))
		}
		bi.WriteString(" \n")
		bw.WriteString(" \n")
	}
	f := filler(r)
	bi.WriteString(f)
	bw.WriteString(f)
	return bi.String(), bw.String(), secrets
}

// cut splits s into writes whose sizes come from sizes (cycled).
func cut(s string, sizes []byte) []string {
	if len(sizes) == 0 {
		return []string{s}
	}
	var out []string
	for i, k := 0, 0; i < len(s); k++ {
		n := int(sizes[k%len(sizes)])%64 + 1
		if sizes[k%len(sizes)] >= 192 {
			n = int(sizes[k%len(sizes)]) * 8 // now and then a large write
		}
		out = append(out, s[i:min(i+n, len(s))])
		i += n
	}
	return out
}

func checkPlanted(t *testing.T, seed uint64, sizes []byte) {
	in, want, secrets := planted(seed)
	got := stream(Default(), cut(in, sizes))
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(got, s) {
			t.Fatalf("seed %d: secret %q in output %q", seed, s, got)
		}
	}
	if got != want {
		t.Fatalf("seed %d sizes %v\n in %q\ngot %q\nwant %q", seed, sizes, in, got, want)
	}
	if b := string(Default().Bytes([]byte(in))); b != want {
		t.Fatalf("seed %d Bytes\n in %q\ngot %q\nwant %q", seed, in, b, want)
	}
}

// FuzzPlanted plants generated secrets of every rule in filler text, cuts
// the stream into random writes, and checks that the output is exactly the
// input with each secret replaced: nothing leaks, nothing else changes.
func FuzzPlanted(f *testing.F) {
	for i := range uint64(len(generators)) {
		f.Add(i, []byte{1})
		f.Add(i*7919, []byte{3, 200, 17})
	}
	f.Fuzz(func(t *testing.T, seed uint64, sizes []byte) {
		checkPlanted(t, seed, sizes)
	})
}

func TestPlanted(t *testing.T) {
	t.Parallel()
	n := uint64(3000)
	if testing.Short() {
		n = 300
	}
	for seed := range n {
		checkPlanted(t, seed, []byte{byte(seed), byte(seed >> 3), byte(seed * 31)})
	}
}

// TestGeneratorsEveryRule checks that the generators cover the rules.
func TestGeneratorsEveryRule(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{"injected-secret": true}
	for _, g := range generators {
		seen[g(r).kind] = true
	}
	for _, ri := range Rules() {
		if !seen[ri.ID] {
			t.Errorf("no generator for rule %q", ri.ID)
		}
	}
}

// FuzzStream is seeded from the rule tables: for any input, no panic, and
// the output of a Writer fed in pieces equals Bytes.
func FuzzStream(f *testing.F) {
	for _, tc := range append(ruleCases, kubeCases...) {
		f.Add(tc.in, []byte{5, 1, 250})
	}
	m := New(Options{Values: []string{"inj3cted-value"}})
	f.Fuzz(func(t *testing.T, in string, sizes []byte) {
		buf := []byte(in)
		want := m.Bytes(buf)
		if string(buf) != in {
			t.Fatalf("Bytes modified its input %q to %q", in, buf)
		}
		if s := m.String(in); s != string(want) {
			t.Fatalf("String(%q) = %q, Bytes gave %q", in, s, want)
		}
		got := stream(m, cut(in, sizes))
		if !bytes.Equal([]byte(got), want) {
			t.Fatalf("in %q sizes %v\nstream %q\n bytes %q", in, sizes, got, want)
		}
		if strings.Contains(in, "inj3cted-value") && strings.Contains(got, "inj3cted-value") {
			t.Fatalf("injected value leaked: %q", got)
		}
	})
}

// FuzzInvisible plants secrets, puts invisible bytes (controls, escape
// strings, zero-width characters) inside them where the fuzzer says, and
// cuts the stream where it says: no secret of 8 bytes or more comes out.
func FuzzInvisible(f *testing.F) {
	f.Add(uint64(1), []byte{3, 9, 200}, []byte{1, 5, 17})
	f.Add(uint64(42), []byte{1}, []byte{0, 30, 2, 7})
	f.Fuzz(func(t *testing.T, seed uint64, sizes, at []byte) {
		in, _, secrets := planted(seed)
		for k, a := range at {
			for _, s := range secrets {
				i := strings.Index(in, s)
				if i < 0 || len(s) < 2 {
					continue
				}
				p := i + 1 + int(a)%(len(s)-1)
				in = in[:p] + invisibles[(k+int(a))%len(invisibles)].b + in[p:]
				break
			}
		}
		got := stream(Default(), cut(in, sizes))
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(got, s) {
				t.Fatalf("seed %d: secret %q in output %q", seed, s, got)
			}
		}
	})
}
