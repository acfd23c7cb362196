package masking_test

import (
	"fmt"
	"os"

	"github.com/bastion-dev/bastion/masking"
)

func ExampleMasker_String() {
	m := masking.Default()
	fmt.Println(m.String("DATABASE_URL=postgres://app:S3cretPw@db:5432/app"))
	fmt.Println(m.String("export DB_PASSWORD=hunter2xyz"))
	fmt.Println(m.String("commit 3f786850e387550fdab836ed7e6dc881de23001b"))
	// Output:
	// DATABASE_URL=postgres://app:[MASKED:url-password]@db:5432/app
	// export DB_PASSWORD=[MASKED:password]
	// commit 3f786850e387550fdab836ed7e6dc881de23001b
}

func ExampleMasker_Bytes() {
	// An SQL result value.
	v := []byte(`{"user": "app", "password": "p4ss w0rd"}`)
	fmt.Printf("%s\n", masking.Default().Bytes(v))
	// Output: {"user": "app", "password": "[MASKED:password]"}
}

func ExampleMasker_Writer() {
	var events []masking.Event
	m := masking.New(masking.Options{
		OnMask: func(e masking.Event) { events = append(events, e) },
	})
	w := m.Writer(os.Stdout)
	// A token split across writes, as a command's output may arrive.
	w.Write([]byte("token: gh" + "p_8rESQedUStPK"))
	w.Write([]byte("R0CsTy4Qwb8DwkNhFdnXsiVp\n"))
	w.Close()
	for _, e := range events {
		fmt.Printf("%s at byte %d, %d bytes\n", e.Kind, e.Offset, e.Length)
	}
	// Output:
	// token: [MASKED:github-token]
	// github-token at byte 7, 40 bytes
}

func ExampleNew() {
	// Values bastion injects, such as a database password, are masked
	// wherever they appear.
	m := masking.New(masking.Options{Values: []string{"pg-Inj3cted!"}})
	fmt.Println(m.String("FATAL: password authentication failed (pg-Inj3cted!)"))
	// Output: FATAL: password authentication failed ([MASKED:injected-secret])
}

func ExampleMasker_WithValues() {
	m := masking.Default().WithValues("s3ssion-only")
	fmt.Println(m.String("echo s3ssion-only"))
	fmt.Println(masking.Default().String("echo s3ssion-only"))
	// Output:
	// echo [MASKED:injected-secret]
	// echo s3ssion-only
}

func ExampleRules() {
	for _, r := range masking.Rules()[:3] {
		fmt.Printf("%s\t%s\n", r.ID, r.Description)
	}
	// Output:
	// injected-secret	exact values given to the masker (injected database passwords, configured secrets)
	// private-key	PEM and OpenSSH private key blocks, also inside JSON strings; private_key= assignments
	// aws-access-key	AWS access key IDs (AKIA, ASIA, ABIA, ACCA, AGPA, AIDA, AIPA, ANPA, ANVA, APKA, AROA, ASCA, A3T)
}
