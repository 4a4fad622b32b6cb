package discovery

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcplb/tcplb"
)

func TestFileParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []tcplb.BackendSpec
		err      string // a substring of the error; "" means none
	}{
		{"one", "127.0.0.1:3001\n", []tcplb.BackendSpec{spec("127.0.0.1:3001", 1)}, ""},
		{"no final newline", "127.0.0.1:3001", []tcplb.BackendSpec{spec("127.0.0.1:3001", 1)}, ""},
		{
			"everything",
			"# app servers\n\n  10.0.0.1:3001\n10.0.0.2:3001 4   # four times\n\t[::1]:3001\t256\r\n[2001:db8::5]:80 1#tight\napp-3.internal:3001 # a name\n   \n#end",
			[]tcplb.BackendSpec{
				spec("10.0.0.1:3001", 1), spec("10.0.0.2:3001", 4), spec("[::1]:3001", 256),
				spec("[2001:db8::5]:80", 1), spec("app-3.internal:3001", 1),
			},
			"",
		},
		{"empty", "", nil, "app.txt: no backends"},
		{"only comments", "# none yet\n\n   # really\n", nil, "app.txt: no backends"},
		{"missing port", "# x\n127.0.0.1\n", nil, "app.txt:2: address"},
		{"port zero", "127.0.0.1:0", nil, "app.txt:1: address"},
		{"port too big", "127.0.0.1:65536", nil, "app.txt:1: address"},
		{"missing host", "a:1\n:3001", nil, "app.txt:2: address"},
		{"unbracketed ipv6", "::1:3001", nil, "app.txt:1: address"},
		{"weight zero", "a:1 0", nil, "app.txt:1: weight \"0\""},
		{"weight too big", "a:1 1\nb:1 257", nil, "app.txt:2: weight \"257\""},
		{"weight not a number", "a:1 heavy", nil, "app.txt:1: weight \"heavy\""},
		{"weight negative", "a:1 -1", nil, "app.txt:1: weight \"-1\""},
		{"extra field", "a:1 2 maxconns=3", nil, "app.txt:1: unexpected field \"maxconns=3\""},
		{"duplicate", "a:1\nb:1\n\na:1 3", nil, "app.txt:4: a:1 already listed on line 1"},
		{"line too long", "a:1\n" + strings.Repeat("x", 70000), nil, "app.txt:2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBackendFile("/etc/tcplb/app.txt", []byte(tc.in))
			if tc.err == "" {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("parseBackendFile(%q) = %v, %v, want %v, nil", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || got != nil {
				t.Errorf("parseBackendFile(%q) = %v, %v, want nil, error containing %q", tc.in, got, err, tc.err)
			}
		})
	}
}

func FuzzFileParse(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:3001\n",
		"# c\n10.0.0.2:3001 4 # x\n[::1]:3001 256\r\n",
		"a:1\na:1",
		"a:1 0",
		"a:1 2 3",
		"",
		"[::1]:3001#",
		"host:65535 +5",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := parseBackendFile("f", data)
		if err != nil {
			if specs != nil || !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("parseBackendFile(%q) = %v, %v: want nil and an error naming the file", data, specs, err)
			}
			return
		}
		if len(specs) == 0 {
			t.Fatalf("parseBackendFile(%q) = empty set, nil error", data)
		}
		// Whatever parses, Pool.Sync takes.
		if err := tcplb.NewPool("p", nil).Sync(specs); err != nil {
			t.Fatalf("parseBackendFile(%q) = %v, which Sync refuses: %v", data, specs, err)
		}
	})
}

// writeAtomic writes data to path as atomic writers do: a temporary file in
// the same directory, renamed into place.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace truncates path and writes data into it, as "echo > file" and
// many editors do.
func writeInPlace(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func startFileTest(t *testing.T, path string) *srcTest {
	return startSrcTest(t, func(log *slog.Logger) Source { return NewFile(path, log) })
}

func TestFileWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.txt")
	writeInPlace(t, path, "127.0.0.1:3001\n127.0.0.1:3002 2\n")
	h := startFileTest(t, path)
	h.expect(spec("127.0.0.1:3001", 1), spec("127.0.0.1:3002", 2))

	// Replaced by rename, as atomic writers and editors do.
	writeAtomic(t, path, "127.0.0.1:3001 3\n[::1]:3003\n")
	h.expect(spec("127.0.0.1:3001", 3), spec("[::1]:3003", 1))

	// Rewritten in place.
	writeInPlace(t, path, "# now one\n127.0.0.1:3004 # alone\n")
	h.expect(spec("127.0.0.1:3004", 1))

	// The same set in another form: read, but no update.
	h.log.reset()
	writeInPlace(t, path, "\n127.0.0.1:3004 1\n")
	h.log.wait(t, "set unchanged")
	h.none()

	// Broken: logged with the line, no update; the next good set is the
	// next update.
	h.log.reset()
	writeAtomic(t, path, "127.0.0.1:3005\n\n127.0.0.1:3006 9000\n")
	h.log.wait(t, "level=ERROR", path+":3: weight \\\"9000\\\"")
	h.none()
	writeAtomic(t, path, "127.0.0.1:3005\n127.0.0.1:3006 200\n")
	h.expect(spec("127.0.0.1:3005", 1), spec("127.0.0.1:3006", 200))

	// Removed: logged, the last set stays; back again: read.
	h.log.reset()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.log.wait(t, "backend file missing")
	h.none()
	writeAtomic(t, path, "127.0.0.1:3007\n")
	h.expect(spec("127.0.0.1:3007", 1))

	// Other files in the directory are none of its business.
	h.log.reset()
	writeInPlace(t, filepath.Join(filepath.Dir(path), "other.txt"), "garbage")
	writeInPlace(t, path, "127.0.0.1:3008\n")
	h.expect(spec("127.0.0.1:3008", 1))
	if strings.Contains(h.log.String(), "other.txt") {
		t.Errorf("log mentions another file:\n%s", h.log)
	}
}

func TestFileBadSetsKeepLastSet(t *testing.T) {
	for _, tc := range []struct{ name, data, log string }{
		{"empty", "", "app.txt: no backends"},
		{"truncated to comments", "# 127.0.0.1:3001\n", "app.txt: no backends"},
		{"duplicate", "127.0.0.1:3002\n127.0.0.1:3002 2\n", "app.txt:2: 127.0.0.1:3002 already listed on line 1"},
		{"bad address", "127.0.0.1:3002\n127.0.0.1\n", "app.txt:2: address"},
		{"extra field", "127.0.0.1:3002 1 x\n", "app.txt:1: unexpected field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.txt")
			writeInPlace(t, path, "127.0.0.1:3001\n")
			h := startFileTest(t, path)
			h.expect(spec("127.0.0.1:3001", 1))
			writeInPlace(t, path, tc.data)
			h.log.wait(t, "invalid backend file", tc.log)
			h.none()
			writeInPlace(t, path, "127.0.0.1:3009\n")
			h.expect(spec("127.0.0.1:3009", 1))
		})
	}
}

func TestFileCreatedAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*testing.T, string, string)
	}{{"in place", writeInPlace}, {"by rename", writeAtomic}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.txt")
			h := startFileTest(t, path)
			h.log.wait(t, "backend file missing", path)
			h.none()
			tc.write(t, path, "[::1]:3001 7\n")
			h.expect(spec("[::1]:3001", 7))
		})
	}
}

func TestFileBadAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.txt")
	writeInPlace(t, path, "127.0.0.1:3001\nnonsense\n")
	h := startFileTest(t, path)
	h.log.wait(t, "invalid backend file", path+":2: address")
	h.none()
	writeInPlace(t, path, "127.0.0.1:3001\n")
	h.expect(spec("127.0.0.1:3001", 1))
}

func TestFileString(t *testing.T) {
	if got, want := NewFile("/etc/tcplb/app.txt", slog.New(slog.DiscardHandler)).String(), "file /etc/tcplb/app.txt"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
