package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestBufferedWriter(t *testing.T) {
	var out lockedBuffer
	w := newBufferedWriter(&out)
	w.Write([]byte("one\n"))
	if got := out.String(); got != "" {
		t.Fatalf("after one short line, output = %q, want it held back", got)
	}
	// The flush timer writes it out without further writes.
	deadline := time.Now().Add(testDeadline)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, output = %q, want %q", testDeadline, out.String(), "one\n")
		}
		time.Sleep(accessLogFlush / 4) // polling for the timer's effect
	}
	// A full buffer is written at once.
	big := strings.Repeat("x", accessLogBuffer) + "\n"
	w.Write([]byte(big))
	if got := out.String(); got != "one\n"+big {
		t.Fatalf("after a full buffer, output has %d bytes, want %d", len(got), len("one\n"+big))
	}
	w.Write([]byte("two\n"))
	w.Flush()
	if got := out.String(); !strings.HasSuffix(got, big+"two\n") {
		t.Fatalf("after Flush, output ends %q, want %q", got[len(got)-8:], "two\n")
	}
}
