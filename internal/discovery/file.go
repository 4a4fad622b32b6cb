package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/tcplb/tcplb"
)

// Defaults for File.
const (
	fileDebounce = 50 * time.Millisecond // quiet time after the last event before a read
	filePoll     = 30 * time.Second      // re-read this often even without events
)

// File is a Source that reads a pool's backends from a text file and
// re-reads it when it changes.
//
// The file lists one backend per line:
//
//	# app servers
//	10.0.0.1:3001          # weight 1
//	10.0.0.2:3001 4        # weight 4: four times the share of 10.0.0.1
//	[2001:db8::5]:3001 2   # IPv6 in brackets
//	app-3.internal:3001    # a name, resolved at each dial
//
// A line is an address, "host:port" as [tcplb.NewBackend] takes it, and an
// optional weight from 1 to [tcplb.MaxWeight] (default 1). A "#" starts a
// comment, on its own line or after the fields; blank lines are ignored.
// Any other field, an invalid address or weight, or an address listed twice
// makes the whole file invalid, and so does a file without a single
// backend: an empty set is refused so that a truncated or half-written file
// cannot empty a pool (drain a pool by listing a backend that refuses
// connections, or by stopping the pool). An invalid or unreadable file is
// logged as "path:line: problem" and skipped; the last good set stays.
// Each distinct problem is logged once until the file is good again.
//
// File watches the file's directory, not the file, so a file replaced by
// rename (as editors, config-management tools and atomic writers do) or
// created after Run starts is seen too. Reads wait until events have been
// quiet for 50ms, so a burst of writes is read once. The file is also
// re-read every 30 seconds, in case an event was lost or the file system
// reports none (network file systems, a Kubernetes ConfigMap's symlink
// swap). update is called only when the set differs from the last one
// passed, ignoring the order of the lines.
type File struct {
	path string
	log  *slog.Logger

	debounce, poll time.Duration
}

// NewFile returns a File source for the file at path, logging to log.
// It does not touch the file system; Run does.
func NewFile(path string, log *slog.Logger) *File {
	return &File{path: path, log: log, debounce: fileDebounce, poll: filePoll}
}

// String returns "file " and the path, for logs.
func (f *File) String() string { return "file " + f.path }

// Run reads the file, calls update with its backends, and watches the file
// until ctx ends; then it returns ctx.Err(). If the file does not exist
// yet, Run logs that and waits for it. See File for what is read when.
func (f *File) Run(ctx context.Context, update func([]tcplb.BackendSpec)) error {
	dir, name := filepath.Dir(f.path), filepath.Base(f.path)

	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		f.log.Warn("cannot watch for changes; polling", "source", f.String(), "every", f.poll, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	// watch adds the directory's watch if it is not in place, and reports
	// whether it is. A directory that does not exist yet is retried at
	// each poll.
	watching := false
	watch := func() {
		if w == nil || watching {
			return
		}
		if err := w.Add(dir); err != nil {
			f.log.Warn("cannot watch directory; polling", "source", f.String(), "dir", dir, "every", f.poll, "err", err)
			return
		}
		watching = true
	}

	var last []tcplb.BackendSpec
	var lastErr string
	read := func() {
		specs, err := readBackendFile(f.path)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				if errors.Is(err, fs.ErrNotExist) {
					f.log.Warn("backend file missing; keeping the last set and waiting for it", "source", f.String(), "err", err)
				} else {
					f.log.Error("invalid backend file; keeping the last set", "source", f.String(), "err", err)
				}
			}
			return
		}
		lastErr = ""
		if last != nil && sameBackendSet(specs, last) {
			f.log.Debug("backend file read; set unchanged", "source", f.String(), "backends", len(specs))
			return
		}
		last = specs
		f.log.Info("backend set changed", "source", f.String(), "backends", len(specs))
		update(specs)
	}

	debounce := time.NewTimer(f.debounce)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(f.poll)
	defer poll.Stop()

	// Watch before the first read, so a change between the two is not missed.
	watch()
	read()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				events, errs = nil, nil
				continue
			}
			if filepath.Clean(ev.Name) == filepath.Clean(dir) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The directory itself went; its watch is gone. Retry at the
				// next poll.
				w.Remove(dir)
				watching = false
				continue
			}
			if filepath.Base(ev.Name) == name {
				debounce.Reset(f.debounce)
			}
		case err, ok := <-errs:
			if !ok {
				events, errs = nil, nil
				continue
			}
			// Usually an overflowed event queue: events were lost, so read.
			f.log.Warn("watching for changes", "source", f.String(), "err", err)
			debounce.Reset(f.debounce)
		case <-debounce.C:
			read()
		case <-poll.C:
			watch()
			read()
		}
	}
}

// readBackendFile reads and parses the backend file at path.
func readBackendFile(path string) ([]tcplb.BackendSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseBackendFile(path, data)
}

// parseBackendFile parses data, a backend file (see File), naming problems
// "name:line: problem". It never returns an empty set without an error.
func parseBackendFile(name string, data []byte) ([]tcplb.BackendSpec, error) {
	var specs []tcplb.BackendSpec
	seen := make(map[string]int) // address -> line
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("%s:%d: unexpected field %q (want \"host:port [weight]\")", name, n, fields[2])
		}
		addr := fields[0]
		if err := tcplb.CheckAddr(addr); err != nil {
			return nil, fmt.Errorf("%s:%d: address %v", name, n, err)
		}
		if prev, ok := seen[addr]; ok {
			return nil, fmt.Errorf("%s:%d: %s already listed on line %d", name, n, addr, prev)
		}
		seen[addr] = n
		weight := 1
		if len(fields) == 2 {
			w, err := strconv.Atoi(fields[1])
			if err != nil || w < 1 || w > tcplb.MaxWeight {
				return nil, fmt.Errorf("%s:%d: weight %q: must be a whole number from 1 to %d", name, n, fields[1], tcplb.MaxWeight)
			}
			weight = w
		}
		specs = append(specs, tcplb.BackendSpec{Addr: addr, Weight: weight})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, n+1, err)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: no backends (an empty set is refused, so a truncated file cannot empty the pool)", name)
	}
	return specs, nil
}
