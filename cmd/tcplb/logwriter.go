package main

import (
	"io"
	"sync"
	"time"
)

// Access-log buffering, as nginx's "access_log ... buffer= flush=": lines are
// written out when accessLogBuffer bytes are pending or accessLogFlush after
// the first pending line, whichever comes first, and on shutdown. This saves
// a write system call per connection; the cost is that a crash loses at most
// accessLogFlush of access-log lines. Operational log lines are not
// buffered.
const (
	accessLogBuffer = 32 << 10
	accessLogFlush  = 100 * time.Millisecond
)

// bufferedWriter batches writes to w. It is safe for concurrent use; each
// Write is kept whole.
type bufferedWriter struct {
	mu        sync.Mutex
	w         io.Writer
	buf       []byte
	scheduled bool // a flush timer is pending
}

func newBufferedWriter(w io.Writer) *bufferedWriter {
	return &bufferedWriter{w: w, buf: make([]byte, 0, accessLogBuffer)}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= accessLogBuffer {
		return len(p), b.flushLocked()
	}
	if !b.scheduled {
		b.scheduled = true
		time.AfterFunc(accessLogFlush, func() { b.Flush() })
	}
	return len(p), nil
}

// Flush writes out what is pending.
func (b *bufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scheduled = false
	return b.flushLocked()
}

func (b *bufferedWriter) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}
