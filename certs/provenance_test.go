package certs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
)

var provenanceTests = []struct {
	name string
	in   string
	want *identity.Provenance // nil: refused
}{
	{"minimal", `{"kind":"agent","subject":"x"}`, &identity.Provenance{Kind: "agent", Subject: "x"}},
	{"full", `{"kind":"human","subject":"alice","issuer":"https://idp","sponsor":"bob","task":"T-1","role":"admin"}`,
		&identity.Provenance{Kind: "human", Subject: "alice", Issuer: "https://idp", Sponsor: "bob", Task: "T-1", Role: "admin"}},
	{"whitespace and order", " {\n \"subject\" : \"x\" ,\t\"kind\":\"agent\" }\n", &identity.Provenance{Kind: "agent", Subject: "x"}},
	{"escaped quote", `{"kind":"agent","subject":"x\",\"kind\":\"human"}`, &identity.Provenance{Kind: "agent", Subject: `x","kind":"human`}},
	{"escaped unicode", `{"kind":"agent","subject":"\u00fc\u65e5"}`, &identity.Provenance{Kind: "agent", Subject: "ü日"}},
	{"empty optional", `{"kind":"agent","subject":"x","issuer":""}`, &identity.Provenance{Kind: "agent", Subject: "x"}},
	{"duplicate kind", `{"kind":"agent","subject":"x","kind":"human"}`, nil},
	{"duplicate subject", `{"kind":"agent","subject":"x","subject":"y"}`, nil},
	{"unknown field", `{"kind":"agent","subject":"x","admin":"true"}`, nil},
	{"case variant key", `{"Kind":"human","kind":"agent","subject":"x"}`, nil},
	{"number value", `{"kind":"agent","subject":1}`, nil},
	{"null value", `{"kind":"agent","subject":"x","issuer":null}`, nil},
	{"object value", `{"kind":"agent","subject":{"a":"b"}}`, nil},
	{"array", `[{"kind":"agent","subject":"x"}]`, nil},
	{"string", `"agent"`, nil},
	{"two objects", `{"kind":"agent","subject":"x"}{"kind":"human","subject":"y"}`, nil},
	{"trailing garbage", `{"kind":"agent","subject":"x"} x`, nil},
	{"truncated", `{"kind":"agent","subject":"x"`, nil},
	{"trailing comma", `{"kind":"agent","subject":"x",}`, nil},
	{"empty", ``, nil},
	{"empty object", `{}`, nil},
	{"unknown kind", `{"kind":"root","subject":"x"}`, nil},
	{"no subject", `{"kind":"agent"}`, nil},
	{"empty subject", `{"kind":"agent","subject":""}`, nil},
	{"escaped newline", `{"kind":"agent","subject":"x\ny"}`, nil},
	{"escaped NUL", `{"kind":"agent","subject":"x\u0000"}`, nil},
	{"escaped bidi override", `{"kind":"agent","subject":"x\u202e"}`, nil},
	{"lone surrogate", `{"kind":"agent","subject":"x\ud800"}`, nil},
	{"invalid utf-8", "{\"kind\":\"agent\",\"subject\":\"x\xff\"}", nil},
	{"too large", `{"kind":"agent","subject":"` + strings.Repeat("a", MaxProvenanceSize) + `"}`, nil},
}

func TestDecodeProvenance(t *testing.T) {
	t.Parallel()
	for _, tt := range provenanceTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeProvenance([]byte(tt.in))
			if tt.want == nil {
				if !errors.Is(err, ErrInvalidProvenance) {
					t.Fatalf("err = %v, want ErrInvalidProvenance (got %+v)", err, got)
				}
				if got != (identity.Provenance{}) {
					t.Errorf("refusal returned a provenance %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(*tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestProvenanceDecoderKnowsEveryField fails when identity.Provenance gains
// a field the strict decoder does not know: certificates carrying it would
// all be refused.
func TestProvenanceDecoderKnowsEveryField(t *testing.T) {
	t.Parallel()
	var p identity.Provenance
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.String {
			t.Fatalf("field %s is not a string; the decoder reads only strings", v.Type().Field(i).Name)
		}
		f.SetString("v-" + v.Type().Field(i).Name)
	}
	p.Kind = identity.KindHuman
	b, err := EncodeProvenance(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeProvenance(b)
	if err != nil {
		t.Fatalf("decoding a fully populated provenance: %v", err)
	}
	if d := cmp.Diff(p, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// FuzzDecodeProvenance: no input panics; anything accepted is valid and
// survives an encode/decode round trip unchanged.
func FuzzDecodeProvenance(f *testing.F) {
	for _, tt := range provenanceTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProvenance(b)
		if err != nil {
			return
		}
		if err := validateProvenance(p); err != nil {
			t.Fatalf("accepted an invalid provenance: %v", err)
		}
		enc, err := EncodeProvenance(p)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		again, err := DecodeProvenance(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if again != p {
			t.Fatalf("round trip changed %+v into %+v", p, again)
		}
		// encoding/json reads the same thing the strict decoder did.
		var std identity.Provenance
		if err := json.Unmarshal(b, &std); err != nil || std != p {
			t.Fatalf("encoding/json reads %+v (%v), strict decoder %+v", std, err, p)
		}
	})
}
