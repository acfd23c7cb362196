package masking

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// pausedStream writes first, flushes as an idle pause would, writes rest
// and closes. It returns what was out after the pause and at the end.
func pausedStream(m *Masker, first, rest string) (atPause, end string) {
	m2 := *m
	m2.idle = -1
	var out bytes.Buffer
	w := m2.Writer(&out)
	w.Write([]byte(first))
	w.Flush()
	atPause = out.String()
	w.Write([]byte(rest))
	w.Close()
	return atPause, out.String()
}

// TestPauseHoldsStrongPrefix cuts strong secrets at every byte with a
// pause in between: the output is the same as without the pause, and what
// was out at the pause never holds more than the text before the secret.
func TestPauseHoldsStrongPrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, secret, kind string }{
		{"aws", tAWS, "aws-access-key"},
		{"github", tGHP, "github-token"},
		{"github pat", tGHPat, "github-token"},
		{"gitlab", tGitLab, "gitlab-token"},
		{"slack", tSlack, "slack-token"},
		{"stripe", tStripe, "stripe-key"},
		{"google", tAIza, "google-api-key"},
		{"google oauth", tYa29, "google-oauth-token"},
		{"openai", tOpenAI, "openai-api-key"},
		{"anthropic", tAnthropic, "anthropic-api-key"},
		{"npm", tNPM, "npm-token"},
		{"sendgrid", tSendGrid, "sendgrid-api-key"},
		{"twilio", tTwilioSK, "twilio-api-key"},
		{"vault", tHVS, "vault-token"},
		{"digitalocean", tDO, "digitalocean-token"},
		{"jwt", tJWT, "jwt"},
		{"scram", tSCRAM, "password-hash"},
		{"bcrypt", tBcrypt, "password-hash"},
		{"sha512crypt", tSHA512Crypt, "password-hash"},
		{"argon2", tArgon2, "password-hash"},
		{"pg md5", tPGMD5, "password-hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := "out: " + tc.secret + " done\n"
			want := "out: " + mk(tc.kind) + " done\n"
			if got := maskBytes(t, in); got != want {
				t.Fatalf("Bytes: got %q want %q", got, want)
			}
			for k := len("out: ") + 1; k < len("out: ")+len(tc.secret); k++ {
				atPause, end := pausedStream(Default(), in[:k], in[k:])
				if atPause != "out: " && atPause != "out:" {
					t.Fatalf("cut at %d: the pause released %q", k, atPause)
				}
				if end != want {
					t.Fatalf("cut at %d: got %q want %q", k, end, want)
				}
			}
		})
	}
}

func TestPauseReleasesOrdinaryText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, atPause string }{
		{"prompt", "user@host:~$ ", "user@host:~$ "},
		{"word", "building modules", "building modules"},
		{"weak value", "password=hunter2xyz", "password=" + mk("password")},
		{"token that may grow", "key " + tGHP, "key "},
		{"whole aws key at a prompt", "key " + tAWS, "key " + mk("aws-access-key")},
		{"not a prefix", "say exit", "say exit"},
		{"prefix of a token prefix", "run gh", "run "},
		{"aws prefix", "Enter key: AKIA", "Enter key: "},
		{"injected value prefix", "conn pg-Inj", "conn "},
		// A few dashes are not yet a key header: vim's mode line, a
		// rule, a flag with no value must reach the screen.
		{"vim mode line", "\x1b[24;1H\x1b[1m-- INSERT --\x1b[m\x1b[24;13H\x1b[K", "\x1b[24;1H\x1b[1m-- INSERT --\x1b[m\x1b[24;13H\x1b[K"},
		{"dashed rule", "results\n-----", "results\n-----"},
		{"flag name", "usage: --password", "usage: --password"},
		{"key header begun", "key:\n-----BEG", "key:\n"},
	} {
		m := New(Options{Values: []string{"pg-Inj3cted"}})
		atPause, end := pausedStream(m, tc.in, "")
		if atPause != tc.atPause {
			t.Errorf("%s: at the pause %q, want %q", tc.name, atPause, tc.atPause)
		}
		// Close writes what is still held, masked if complete.
		if want := string(m.Bytes([]byte(tc.in))); end != want {
			t.Errorf("%s: at Close %q, want %q", tc.name, end, want)
		}
	}
}

// TestPauseInKeyHeaderStillMasksTheKey: a pause that releases the first
// dashes of a private key's header (they could be a rule) leaves the key
// masked: the header is then not recognised, but the key's body is a
// secret on its own.
func TestPauseInKeyHeaderStillMasksTheKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{tRSA, tOpenSSH} {
		in := "key:\n" + key + "\n$ "
		for k := len("key:\n") + 1; k < len("key:\n-----B"); k++ {
			atPause, end := pausedStream(Default(), in[:k], in[k:])
			if atPause != in[:k] {
				t.Errorf("cut at %d: the pause released %q, want %q", k, atPause, in[:k])
			}
			for _, line := range strings.Split(key, "\n")[1:] {
				if len(line) >= 16 && !strings.HasPrefix(line, "-----END") && strings.Contains(end, line) {
					t.Errorf("cut at %d: a key line passed: %q in %q", k, line, end)
				}
			}
			if !strings.Contains(end, "[MASKED:") {
				t.Errorf("cut at %d: nothing masked: %q", k, end)
			}
		}
	}
}

// TestIdleDoesNotReleaseAKIA is `printf AKIA; sleep 0.05; printf <rest>`
// with the real idle timer, under a fake clock.
func TestIdleDoesNotReleaseAKIA(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var out bytes.Buffer
		get := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
		w := New(Options{}).Writer(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}))
		w.Write([]byte("id: AKIA"))
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "id: " {
			t.Fatalf("after 50ms: %q", got)
		}
		w.Write([]byte(tAWS[4:12]))
		time.Sleep(time.Second)
		synctest.Wait()
		if got := get(); got != "id: " {
			t.Fatalf("after a second: %q", got)
		}
		w.Write([]byte(tAWS[12:] + "\n$ "))
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "id: "+mk("aws-access-key")+"\n$ " {
			t.Fatalf("after the rest: %q", got)
		}
		w.Close()
	})
}

// TestPauseHoldIsBounded: a held strong candidate is decided once it
// reaches its rule's maximum length.
func TestPauseHoldIsBounded(t *testing.T) {
	t.Parallel()
	long := "jwt " + tJWT[:40] + strings.Repeat("A", 70<<10)
	var out bytes.Buffer
	w := New(Options{Idle: -1}).Writer(&out)
	w.Write([]byte(long))
	w.Flush()
	if out.Len() == 0 {
		t.Fatal("nothing released after 70 KiB")
	}
	w.Close()
}
