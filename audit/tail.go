package audit

import (
	"bufio"
	"io"
)

// tail describes the end of a log file.
type tail struct {
	prev string // hash of the last complete event, "" if none
	seq  uint64 // that event's Seq: zero when it is a legacy event, or none
	// torn holds the bytes after the last complete event, without the
	// final newline if there is one; nil when there are none.
	torn    []byte
	newline bool // the file ends with a newline
	// unterminated: the last line is a complete event missing its newline.
	unterminated bool
}

// scanTail reads f backwards from size to find the last complete event.
func scanTail(f io.ReaderAt, size int64) (tail, error) {
	for n := int64(8 << 10); ; n *= 2 {
		pos := max(0, size-n)
		buf := make([]byte, size-pos)
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return tail{}, err
		}
		if t, ok := findTail(buf, pos == 0); ok {
			return t, nil
		}
	}
}

// findTail looks for the last complete event in buf, the end of the file.
// whole says buf starts at the beginning of the file; when it does not and
// no event was found, ok is false and the caller reads further back.
func findTail(buf []byte, whole bool) (t tail, ok bool) {
	i := lastIndex(buf, len(buf)) // end of the last complete line
	// After it, a piece without a newline: a complete event that lost its
	// newline, or torn.
	if i < len(buf)-1 {
		piece := buf[i+1:]
		if e, ok := parseEvent(piece); ok && (i >= 0 || whole) {
			return tail{prev: e.Hash, seq: e.Seq, unterminated: true}, true
		}
	}
	for i >= 0 {
		j := lastIndex(buf, i)
		if j < 0 && !whole {
			return tail{}, false
		}
		if e, ok := parseEvent(buf[j+1 : i]); ok {
			t := newTail(e.Hash, buf[i+1:])
			t.seq = e.Seq
			return t, true
		}
		i = j
	}
	if !whole {
		return tail{}, false
	}
	return newTail("", buf), true
}

func newTail(prev string, rest []byte) tail {
	t := tail{prev: prev}
	if len(rest) == 0 {
		return t
	}
	t.newline = rest[len(rest)-1] == '\n'
	if t.newline {
		rest = rest[:len(rest)-1]
	}
	t.torn = append([]byte{}, rest...)
	return t
}

// lastIndex is the index of the last newline in buf[:end], or -1.
func lastIndex(buf []byte, end int) int {
	for k := end - 1; k >= 0; k-- {
		if buf[k] == '\n' {
			return k
		}
	}
	return -1
}

// countEvents counts the complete events in the first size bytes of f, as
// Verify numbers them: the number the next keyed event of a legacy log
// follows. It reads the whole file, once, when a keyed Log first opens a
// legacy one.
func countEvents(f io.ReaderAt, size int64) (uint64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10)
	var n uint64
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer
			long := append([]byte{}, line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			if _, ok := parseEvent(trimNewline(line)); ok {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
