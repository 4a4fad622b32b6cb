package discovery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
)

// srcWait bounds every wait in these tests.
const srcWait = 10 * time.Second

// logRecorder is a slog destination the test can wait on.
type logRecorder struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at each write
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Write(p)
	close(r.changed)
	r.changed = make(chan struct{})
	return len(p), nil
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// reset forgets what was logged so far.
func (r *logRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
}

// wait returns the first logged line containing every one of subs, waiting
// up to srcWait for it.
func (r *logRecorder) wait(t *testing.T, subs ...string) string {
	t.Helper()
	deadline := time.After(srcWait)
	for {
		r.mu.Lock()
		for line := range strings.Lines(r.buf.String()) {
			if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(line, s) }) {
				r.mu.Unlock()
				return line
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line with %q within %v; log:\n%s", subs, srcWait, r)
		}
	}
}

// srcTest runs a Source for a test and collects its updates.
type srcTest struct {
	t       *testing.T
	updates chan []tcplb.BackendSpec
	log     *logRecorder
}

// startSrcTest runs the Source that mk returns (given a logger writing to
// the srcTest's recorder) until the test ends, then checks that Run
// returned context.Canceled promptly.
func startSrcTest(t *testing.T, mk func(*slog.Logger) Source) *srcTest {
	t.Helper()
	h := &srcTest{t: t, updates: make(chan []tcplb.BackendSpec), log: newLogRecorder()}
	src := mk(slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(specs []tcplb.BackendSpec) {
			select {
			case h.updates <- specs:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%v: Run = %v, want %v", src, err, context.Canceled)
			}
		case <-time.After(srcWait):
			t.Errorf("%v: Run did not return within %v of cancel", src, srcWait)
		}
	})
	return h
}

// next returns the next update, failing the test if none comes within
// srcWait.
func (h *srcTest) next() []tcplb.BackendSpec {
	h.t.Helper()
	select {
	case specs := <-h.updates:
		return specs
	case <-time.After(srcWait):
		h.t.Fatalf("no update within %v; log:\n%s", srcWait, h.log)
		return nil
	}
}

// expect fails the test unless the next update is want (in any order).
func (h *srcTest) expect(want ...tcplb.BackendSpec) {
	h.t.Helper()
	if got := h.next(); !sameBackendSet(got, want) {
		h.t.Fatalf("update = %v, want %v; log:\n%s", got, want, h.log)
	}
}

// none fails the test if an update is waiting.
func (h *srcTest) none() {
	h.t.Helper()
	select {
	case specs := <-h.updates:
		h.t.Fatalf("unexpected update %v; log:\n%s", specs, h.log)
	default:
	}
}

// spec is a BackendSpec literal, short.
func spec(addr string, weight int) tcplb.BackendSpec {
	return tcplb.BackendSpec{Addr: addr, Weight: weight}
}

func TestFileDNSSameBackendSet(t *testing.T) {
	a, b, c := spec("a:1", 1), spec("b:1", 1), spec("b:1", 2)
	for _, tc := range []struct {
		x, y []tcplb.BackendSpec
		want bool
	}{
		{nil, nil, true},
		{[]tcplb.BackendSpec{a, b}, []tcplb.BackendSpec{b, a}, true},
		{[]tcplb.BackendSpec{a, b}, []tcplb.BackendSpec{a, c}, false},
		{[]tcplb.BackendSpec{a}, []tcplb.BackendSpec{a, a}, false},
		{[]tcplb.BackendSpec{a, a, b}, []tcplb.BackendSpec{a, b, b}, false},
	} {
		if got := sameBackendSet(tc.x, tc.y); got != tc.want {
			t.Errorf("sameBackendSet(%v, %v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}
