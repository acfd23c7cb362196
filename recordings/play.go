package recordings

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// PlayOptions configures Play. The zero value plays in real time from the
// start.
type PlayOptions struct {
	// Speed multiplies the playback speed; zero or less means 1.
	Speed float64
	// IdleLimit caps every pause between events (before Speed applies);
	// zero keeps the recorded pauses.
	IdleLimit time.Duration
	// FromCommand starts playback at the marker of that command (1-based):
	// the output before it is written at once, so the screen is as it was.
	// Zero plays from the start.
	FromCommand int
}

// Keys Play understands, read from a terminal in raw mode.
const (
	keyPause  = ' '
	keyQuit   = 'q'
	keyCtrlC  = 0x03
	keyBuffer = 16
)

// Play writes the recording in r to out in real time (scaled by Speed).
// When keys is non-nil it is read for controls: space pauses and resumes,
// q or Ctrl-C stops. Play returns nil at the end of the recording
// (including one cut short by a crash) or when stopped by a key, and ctx's
// error when ctx is done.
//
// Play reads keys in a goroutine. When it returns, it unblocks that read
// with SetReadDeadline if keys has it (an *os.File in non-blocking mode
// does) and waits for the goroutine; otherwise the goroutine ends when
// keys next returns.
func Play(ctx context.Context, r io.Reader, out io.Writer, keys io.Reader, opt PlayOptions) error {
	rd, err := Open(r)
	if err != nil {
		return err
	}
	speed := opt.Speed
	if speed <= 0 {
		speed = 1
	}
	p := player{out: out}
	if keys != nil {
		k := startKeys(keys)
		defer k.stop()
		p.keys = k.c
	}
	started := opt.FromCommand <= 0
	var (
		origin = time.Now() // wall time of virtual time zero
		virt   time.Duration
		prevT  float64
	)
	for {
		e, err := rd.Next()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if !started {
				return fmt.Errorf("recordings: play: the recording has no command %d", opt.FromCommand)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("recordings: play: %w", err)
		}
		if !started {
			if m, ours, _ := parseMarker(e.Data); e.Type == CodeMarker && ours && m.Type == markCommand && m.N == opt.FromCommand {
				started, origin, prevT = true, time.Now(), e.Time
				continue
			}
			if err := p.write(e); err != nil {
				return err
			}
			continue
		}
		if e.Type != CodeOutput && e.Type != CodeOutputBytes {
			continue
		}
		// Idle is time without output: gaps are measured between outputs.
		gap := time.Duration((e.Time - prevT) * float64(time.Second))
		prevT = e.Time
		if opt.IdleLimit > 0 && gap > opt.IdleLimit {
			gap = opt.IdleLimit
		}
		virt += gap
		quit, err := p.wait(ctx, &origin, time.Duration(float64(virt)/speed))
		if quit || err != nil {
			return err
		}
		if err := p.write(e); err != nil {
			return err
		}
	}
}

type player struct {
	out  io.Writer
	keys <-chan byte
	// skip drops the "o" event that shows, with U+FFFD, the exact bytes
	// an "ob" event just wrote.
	skip bool
}

func (p *player) write(e Event) error {
	var b []byte
	switch e.Type {
	case CodeOutputBytes:
		b, p.skip = e.Bytes(), true
	case CodeOutput:
		if p.skip {
			p.skip = false
			return nil
		}
		b = []byte(e.Data)
	default:
		return nil
	}
	if _, err := p.out.Write(b); err != nil {
		return fmt.Errorf("recordings: play: %w", err)
	}
	return nil
}

// wait sleeps until origin+at, handling keys; a pause moves origin on by
// its length.
func (p *player) wait(ctx context.Context, origin *time.Time, at time.Duration) (quit bool, err error) {
	var pausedAt time.Time
	paused := false
	for {
		var timer <-chan time.Time // nil while paused: wait for keys only
		if !paused {
			d := time.Until(origin.Add(at))
			if d <= 0 {
				return false, nil
			}
			// Timers need no Stop to be collected (Go 1.23).
			timer = time.After(d)
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-timer:
		case k, ok := <-p.keys:
			switch {
			case !ok:
				p.keys = nil // no more keys: play on
			case k == keyQuit || k == keyCtrlC:
				return true, nil
			case k == keyPause && paused:
				*origin = origin.Add(time.Since(pausedAt))
				paused = false
			case k == keyPause:
				pausedAt, paused = time.Now(), true
			}
		}
	}
}

// keyReader reads keys in a goroutine that stop waits for when it can.
type keyReader struct {
	r    io.Reader
	c    chan byte
	done chan struct{}
	wg   sync.WaitGroup
}

func startKeys(r io.Reader) *keyReader {
	k := &keyReader{r: r, c: make(chan byte, keyBuffer), done: make(chan struct{})}
	k.wg.Go(func() {
		defer close(k.c)
		buf := make([]byte, 32)
		for {
			n, err := r.Read(buf)
			for _, b := range buf[:n] {
				select {
				case k.c <- b:
				case <-k.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return k
}

func (k *keyReader) stop() {
	close(k.done)
	if d, ok := k.r.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Now()) == nil {
		k.wg.Wait()
	}
}
