package masking

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// dense returns about n bytes of text with a planted secret every few
// lines, and the number of secrets in it.
func dense(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(filler(r) + "\n")
		b.Write(corpus(200, r.Uint64()))
		b.WriteString(" \n" + generators[r.IntN(len(generators))](r).in() + " \n")
	}
	return []byte(b.String())
}

func benchWriter(b *testing.B, text []byte, chunk int) {
	m := New(Options{Idle: -1})
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		w := m.Writer(io.Discard)
		for i := 0; i < len(text); i += chunk {
			w.Write(text[i:min(i+chunk, len(text))])
		}
		w.Close()
	}
}

// BenchmarkWriterClean streams 4 MiB of secret-free logs, source code,
// listings and JSON in 32 KiB writes.
func BenchmarkWriterClean(b *testing.B) { benchWriter(b, corpus(4<<20, 1), 32<<10) }

// BenchmarkWriterCleanPTY uses 4 KiB writes, the size of a PTY read.
func BenchmarkWriterCleanPTY(b *testing.B) { benchWriter(b, corpus(1<<20, 2), 4<<10) }

// BenchmarkWriterDense streams text with a secret about every 400 bytes.
func BenchmarkWriterDense(b *testing.B) { benchWriter(b, dense(1<<20), 32<<10) }

// BenchmarkBytes masks short SQL-result-like values and a large buffer.
func BenchmarkBytes(b *testing.B) {
	b.Run("values", func(b *testing.B) {
		vals := strings.Fields("alice bob@example.com 2024-01-01 42 active 3.14 Berlin " +
			"postgres://app:Passw0rd1@db/app pending 'hello world' 550e8400-e29b-41d4-a716-446655440000")
		n := 0
		for _, v := range vals {
			n += len(v)
		}
		m := Default()
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			for _, v := range vals {
				m.Bytes([]byte(v))
			}
		}
	})
	b.Run("clean", func(b *testing.B) {
		text := corpus(4<<20, 5)
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			Default().Bytes(text)
		}
	})
	b.Run("dense", func(b *testing.B) {
		text := dense(1 << 20)
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			Default().Bytes(text)
		}
	})
}
