package bastion_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

// Large output arrives whole and in order on both streams, and a
// background child that keeps stdout and stderr open does not hold the
// session: it ends after the grace period with the command's status.
func TestE2EExecOutputStreams(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-output")

	r := sshtest.SSH(t, login, nil, "bastion", "seq 1 300000; seq 1 5000 >&2; exit 4")
	var want, wantErr strings.Builder
	for i := 1; i <= 300000; i++ {
		fmt.Fprintln(&want, i)
	}
	for i := 1; i <= 5000; i++ {
		fmt.Fprintln(&wantErr, i)
	}
	if r.Code != 4 || r.Stdout != want.String() || r.Stderr != wantErr.String() {
		t.Fatalf("code %d, stdout %d bytes (want %d), stderr %d bytes (want %d), or not identical",
			r.Code, len(r.Stdout), want.Len(), len(r.Stderr), wantErr.Len())
	}

	r = sshtest.SSH(t, login, nil, "bastion", "echo before; sleep 30 & echo after")
	if r.Code != 0 || r.Stdout != "before\nafter\n" {
		t.Fatalf("background child: code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
