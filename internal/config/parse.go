package config

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parse decodes data into a Config, fills in defaults and validates it. It
// returns either the Config or the problems found, in line order.
func parse(data []byte) (*Config, errorList) {
	root, errs := parseYAML(data)
	if root == nil {
		return nil, errs
	}
	want := "a mapping of " + topLevelKeys()
	switch {
	case root.Kind == yaml.MappingNode:
		c := new(Config)
		c.setDefaults()
		errs = append(errs, decodeConfig(root, c)...)
		if len(errs) == 0 {
			c.fillDerived()
			return c, nil
		}
	case root.Kind == yaml.ScalarNode && root.ShortTag() == nullTag:
		errs.add(root.Line, "", "empty configuration: want %s", want)
	case root.Kind == yaml.SequenceNode:
		errs.add(root.Line, "", "want %s, got a list", want)
	default:
		errs.add(root.Line, "", "%s: want %s", formatScalar(root), want)
	}
	// In line order, with errors about missing keys, which have no line,
	// last.
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(sortLine(a), sortLine(b))
	})
	return nil, errs
}

func sortLine(e *Error) int {
	if e.Line <= 0 {
		return math.MaxInt
	}
	return e.Line
}

// decodeConfig decodes the mapping root into c and validates the result.
func decodeConfig(root *yaml.Node, c *Config) errorList {
	d := newDecoder()
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	errs := d.errs
	if d.aliasWork > maxAliasNodes {
		return errs // c is only partly decoded
	}
	// Check what could be decoded, but say nothing more about values that
	// already have an error: "want a list" is enough for a pools key,
	// without "at least one pool is required" too.
	for _, e := range c.validate() {
		if !d.failedAt(e.Path) {
			e.Line = d.lineOf(e.Path)
			errs = append(errs, e)
		}
	}
	return errs
}

// failedAt reports whether there was an error decoding path or a value
// containing it.
func (d *decoder) failedAt(path string) bool {
	for p := path; ; p = parentPath(p) {
		if d.failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// lineOf returns the line of the value at path, or of the nearest value
// containing it if path was not in the document. It returns 0 for a key
// missing at the top level.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if line, ok := d.lines[p]; ok {
			return line
		}
	}
	return 0
}

// topLevelKeys returns the keys of a Config, as "a, b and c".
func topLevelKeys() string {
	names := fieldsOf(reflect.TypeFor[Config]()).names()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// parseYAML parses data as a single YAML document and returns its root
// node, or nil if there is none. A syntax error in the first document is
// returned alone; a second document is an error that still lets the first
// be checked.
func parseYAML(data []byte) (*yaml.Node, errorList) {
	var errs errorList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(0, "", "empty configuration: want a mapping of %s", topLevelKeys())
		} else {
			errs = append(errs, yamlError(err))
		}
		return nil, errs
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		errs = append(errs, yamlError(err))
	default:
		errs.add(next.Line, "", "found a second document; want only one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		errs.add(doc.Line, "", "empty configuration: want a mapping of %s", topLevelKeys())
		return nil, errs
	}
	return doc.Content[0], errs
}

// yamlError turns an error from the YAML parser, such as
// "yaml: line 3: did not find expected key", into an *Error.
func yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.Join(strings.Fields(msg), " ") // keep it on one line
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil && l > 0 {
				line, msg = l, after
			}
		}
	}
	return &Error{Line: line, Msg: "invalid YAML: " + msg}
}
