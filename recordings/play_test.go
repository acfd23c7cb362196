package recordings

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var playLines = []string{
	`{"version":2,"width":80,"height":24}`,
	`[1.0, "o", "a"]`,
	`[2.0, "i", "typed"]`,
	`[3.0, "o", "b"]`,
	`[3.0, "m", "{\"type\":\"command\",\"n\":1,\"cmd\":\"ls\",\"decision\":\"allow\",\"lines\":4,\"sha256\":\"` + strings.Repeat("0", 64) + `\"}"]`,
	`[4.0, "r", "100x30"]`,
	`[10.0, "o", "c"]`,
	`[10.5, "ob", "/w=="]`,
	`[10.5, "o", "\ufffd"]`,
}

var playCast = strings.Join(playLines, "\n") + "\n"

// timedWriter notes when (in bubble time, from its creation) each write
// happens.
type timedWriter struct {
	start  time.Time
	writes []string
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, fmt.Sprintf("%q@%v", p, time.Since(w.start)))
	return len(p), nil
}

type key struct {
	at time.Duration
	b  byte
}

func TestPlay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  PlayOptions
		cast string
		// keys are sent at the given times after the start.
		keys    []key
		timeout time.Duration
		want    string
		wantErr string
	}{
		{name: "real time", want: `"a"@1s "b"@3s "c"@10s "\xff"@10.5s`},
		{name: "double speed", opt: PlayOptions{Speed: 2}, want: `"a"@500ms "b"@1.5s "c"@5s "\xff"@5.25s`},
		{name: "idle limit", opt: PlayOptions{IdleLimit: 2 * time.Second}, want: `"a"@1s "b"@3s "c"@5s "\xff"@5.5s`},
		{name: "from command", opt: PlayOptions{FromCommand: 1}, want: `"a"@0s "b"@0s "c"@7s "\xff"@7.5s`},
		{name: "no such command", opt: PlayOptions{FromCommand: 2}, want: `"a"@0s "b"@0s "c"@0s "\xff"@0s`, wantErr: "recordings: play: the recording has no command 2"},
		{name: "pause and resume", keys: []key{{500 * time.Millisecond, ' '}, {5500 * time.Millisecond, ' '}},
			want: `"a"@6s "b"@8s "c"@15s "\xff"@15.5s`},
		{name: "quit", keys: []key{{2 * time.Second, 'q'}}, want: `"a"@1s`},
		{name: "ctrl-c", keys: []key{{2 * time.Second, 3}}, want: `"a"@1s`},
		{name: "other keys are ignored", keys: []key{{2 * time.Second, 'x'}}, want: `"a"@1s "b"@3s "c"@10s "\xff"@10.5s`},
		{name: "cancelled", timeout: 2 * time.Second, want: `"a"@1s`, wantErr: "context deadline exceeded"},
		{name: "cut off by a crash", cast: strings.Join(playLines[:7], "\n") + "\n" + `[10.5, "ob", "/w`, want: `"a"@1s "b"@3s "c"@10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				cast := tt.cast
				if cast == "" {
					cast = playCast
				}
				pr, pw := io.Pipe()
				go func() {
					start := time.Now()
					for _, k := range tt.keys {
						time.Sleep(k.at - time.Since(start))
						pw.Write([]byte{k.b})
					}
				}()
				out := &timedWriter{start: time.Now()}
				err := Play(ctx, strings.NewReader(cast), out, pr, tt.opt)
				pw.Close()
				if got := strings.Join(out.writes, " "); got != tt.want {
					t.Errorf("writes:\n got %s\nwant %s", got, tt.want)
				}
				if fmt.Sprint(err) != tt.wantErr && !(err == nil && tt.wantErr == "") {
					t.Errorf("Play = %v, want %q", err, tt.wantErr)
				}
			})
		})
	}
}

func TestPlayWithoutKeys(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		out := &timedWriter{start: time.Now()}
		if err := Play(t.Context(), strings.NewReader(playCast), out, nil, PlayOptions{Speed: 10}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(out.writes, " "); got != `"a"@100ms "b"@300ms "c"@1s "\xff"@1.05s` {
			t.Errorf("writes: %s", got)
		}
	})
}
