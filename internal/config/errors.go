package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is one problem in a configuration. Parse, Load and Validate return
// errors.Join of one *Error per problem; use errors.As or the Unwrap() []error
// method of the joined error to get at them.
type Error struct {
	File string // file name, set by Load
	Line int    // line in the YAML text, or 0 if unknown
	Path string // key path, as in "pools[0].backends[1].addr"; empty for the whole document
	Msg  string // the problem, starting with the offending value if there is one
}

// Error formats e on one line as "file:line: path: msg", leaving out the
// parts that are unknown; without a file name the line is "line N: ".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxErrors is how many errors are reported before giving up, so that a
// file that is not a tcplb configuration at all gives a readable answer.
const maxErrors = 20

// errorList collects the problems found in a configuration.
type errorList []*Error

func (l *errorList) add(line int, path, format string, args ...any) {
	*l = append(*l, &Error{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns the errors joined, at most maxErrors of them, or nil if
// there are none.
func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	n := min(len(l), maxErrors)
	errs := make([]error, n, n+1)
	for i, e := range l[:n] {
		errs[i] = e
	}
	if len(l) > n {
		errs = append(errs, &Error{File: l[0].File, Msg: fmt.Sprintf("too many errors (%d more)", len(l)-n)})
	}
	return errors.Join(errs...)
}

// maxQuoted is the length beyond which quote shortens a value.
const maxQuoted = 64

// quote returns s as a Go string literal, shortened with "..." if it is
// long, for showing a value from the configuration in an error.
func quote(s string) string {
	if len(s) > maxQuoted {
		i := maxQuoted - 3
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "..."
	}
	return strconv.Quote(s)
}

// quoteIfNeeded returns s as it is if it is short and made of printable
// ASCII other than space, and quoted otherwise. It is for names and tags,
// which are usually plain.
func quoteIfNeeded(s string) string {
	if s == "" || len(s) > maxQuoted {
		return quote(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' {
			return quote(s)
		}
	}
	return s
}

// keyPath returns the path of key within the mapping at path. A key that
// is not a plain word is quoted, so that the path stays readable and on
// one line.
func keyPath(path, key string) string {
	if !isWord(key) {
		key = quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func isWord(s string) bool {
	if s == "" || len(s) > maxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// indexPath returns the path of element i of the list at path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath returns the path of the mapping or list that contains path,
// or "" if path is at the top level.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
