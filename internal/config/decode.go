package config

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The decoder fills Go values from a yaml.Node tree. Unlike yaml.v3's own
// decoding it knows the key path of every value, so that its errors can say
// "pools[0].backends[1].weight" rather than "line 9: cannot unmarshal", and
// it goes on after an error to report them all.
//
// It handles structs, whose keys are the names in their `yaml:"name"` field
// tags (fields without one are not configurable), slices, pointers,
// strings, booleans, integers, floats and time.Duration. Adding a key to
// the configuration is adding a field to its struct.
//
// Defaults are set before decoding, so that the keys present override them
// and null keeps them. A new list element or pointer target gets its
// defaults from its setDefaults method, if it has one. A pointer field
// stays nil when its key is absent or null and otherwise points to a new
// value with its defaults, even for an empty mapping: this is how a section
// such as a pool's health is optional.
//
// A key replaces its field's whole value, as in YAML: one that holds a
// mapping does not combine with what a merge key gave the field, but
// starts again from a new pointer target or, for a struct field, from the
// zero value and its type's setDefaults method. The defaults of a struct
// type must therefore be set by its own setDefaults method, which that of
// the struct holding it calls.
//
// A type whose pointer has a decodeScalar method accepts a scalar in place
// of its usual mapping, as a backend accepts just its address.

// defaulter is implemented by types with defaults.
type defaulter interface {
	setDefaults()
}

// scalarDecoder is implemented by types that can be written as a scalar.
type scalarDecoder interface {
	decodeScalar(s string) error
}

// maxAliasNodes bounds the number of nodes decoded through aliases, so
// that a small document of nested aliases cannot make decoding take
// exponential time.
const maxAliasNodes = 100_000

// YAML tags, as returned by yaml.Node.ShortTag.
const (
	nullTag      = "!!null"
	boolTag      = "!!bool"
	strTag       = "!!str"
	intTag       = "!!int"
	floatTag     = "!!float"
	timestampTag = "!!timestamp"
	seqTag       = "!!seq"
	mapTag       = "!!map"
	mergeTag     = "!!merge"
)

var durationType = reflect.TypeFor[time.Duration]()

type decoder struct {
	errs   errorList
	failed map[string]bool // paths with errors
	lines  map[string]int  // path of each decoded value → its line

	aliases   map[*yaml.Node]bool // aliases being decoded, to detect cycles
	aliasWork int                 // nodes decoded through aliases
}

func newDecoder() *decoder {
	return &decoder{
		failed:  make(map[string]bool),
		lines:   make(map[string]int),
		aliases: make(map[*yaml.Node]bool),
	}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs.add(n.Line, path, format, args...)
	d.failed[path] = true
}

// decode decodes n into v, which must be settable; path is the key path of
// n for errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.alias(n, v, path)
		return
	}
	if len(d.aliases) > 0 {
		d.aliasWork++
		if d.aliasWork > maxAliasNodes {
			if d.aliasWork == maxAliasNodes+1 {
				d.errorf(n, path, "too many aliases to expand")
			}
			return
		}
	}
	d.lines[path] = n.Line

	tag := n.ShortTag()
	switch tag {
	case nullTag:
		return // keep the default
	case boolTag, strTag, intTag, floatTag, timestampTag, seqTag, mapTag:
	default:
		if n.Kind == yaml.ScalarNode {
			d.errorf(n, path, "%s: unsupported tag %s", quote(n.Value), quoteIfNeeded(tag))
		} else {
			d.errorf(n, path, "unsupported tag %s", quoteIfNeeded(tag))
		}
		return
	}

	if n.Kind == yaml.ScalarNode && v.CanAddr() {
		if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
			if !isText(tag) {
				d.mismatch(n, path, "a string or a mapping")
			} else if err := sd.decodeScalar(n.Value); err != nil {
				d.errorf(n, path, "%s: %v", quote(n.Value), err)
			}
			return
		}
	}

	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			setDefaults(v.Elem())
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || !isText(tag) {
			d.mismatch(n, path, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || tag != boolTag || err != nil {
			d.mismatch(n, path, "true or false")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.decodeInt(n, v, path)
	case reflect.Float32, reflect.Float64:
		d.decodeFloat(n, v, path)
	default:
		// A configuration type the decoder does not handle: a bug, not a
		// problem in the file, but an error is kinder than a panic.
		d.errorf(n, path, "cannot decode into a field of type %s", v.Type())
	}
}

// isText reports whether a scalar with the tag can be taken as a string.
// Numbers and the like are taken as written: "name: 1.10" is "1.10".
func isText(tag string) bool {
	switch tag {
	case strTag, intTag, floatTag, boolTag, timestampTag:
		return true
	}
	return false
}

// alias decodes the node that alias n refers to.
func (d *decoder) alias(n *yaml.Node, v reflect.Value, path string) {
	if !d.enterAlias(n, path) {
		return
	}
	defer delete(d.aliases, n)
	start := len(d.errs)
	d.decode(n.Alias, v, path)
	// Errors about the value as a whole point at the alias, and so, through
	// d.lines, do later ones about keys missing from it. Errors inside it
	// point into the anchor.
	for _, e := range d.errs[start:] {
		if e.Path == path {
			e.Line = n.Line
		}
	}
	d.lines[path] = n.Line
}

// enterAlias marks alias n as being decoded, or reports false after
// recording an error if it cannot be.
func (d *decoder) enterAlias(n *yaml.Node, path string) bool {
	switch {
	case n.Alias == nil:
		d.errorf(n, path, "unknown anchor %s", quoteIfNeeded(n.Value))
		return false
	case d.aliases[n]:
		d.errorf(n, path, "alias *%s refers to a node that contains it", quoteIfNeeded(n.Value))
		return false
	}
	d.aliases[n] = true
	return true
}

// mismatch records that n is not the kind of value wanted at path.
func (d *decoder) mismatch(n *yaml.Node, path, want string) {
	switch n.Kind {
	case yaml.MappingNode:
		d.errorf(n, path, "want %s, got a mapping", want)
	case yaml.SequenceNode:
		d.errorf(n, path, "want %s, got a list", want)
	default:
		d.errorf(n, path, "%s: want %s", formatScalar(n), want)
	}
}

// formatScalar returns a scalar's value for an error: numbers and booleans
// as they are, other values quoted.
func formatScalar(n *yaml.Node) string {
	switch n.ShortTag() {
	case intTag, floatTag, boolTag:
		if len(n.Value) <= maxQuoted && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			return quoteIfNeeded(n.Value)
		}
	}
	return quote(n.Value)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, path, "a mapping")
		return
	}
	// Merge keys first, so that the mapping's own keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], v, path)
		}
	}
	d.lines[path] = n.Line

	fields := fieldsOf(v.Type())
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			continue
		}
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.mismatch(k, path, "a string key")
			continue
		}
		kpath := keyPath(path, k.Value)
		if seen[k.Value] {
			d.errorf(k, kpath, "duplicate key")
			continue
		}
		seen[k.Value] = true
		f, ok := fields.lookup(k.Value)
		if !ok {
			d.errorf(k, kpath, "unknown key (known: %s)", strings.Join(fields.names(), ", "))
			continue
		}
		fv := v.Field(f)
		if !isNull(val) {
			reset(fv)
		}
		d.decode(val, fv, kpath)
	}
}

// isNull reports whether n is null, or an alias of null.
func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

// reset readies the field v to be replaced by a key's value, so that the
// value does not combine with what a merge key put there: a pointer is set
// to nil, for decode to allocate a new target, and a struct to its zero
// value and its defaults. Other values are replaced as they are decoded.
func reset(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.SetZero()
	case reflect.Struct:
		v.SetZero()
		setDefaults(v)
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag
}

// merge decodes the value of a merge key, "<<", into the struct v: a
// mapping, or a list of mappings of which the earlier take precedence.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		if !d.enterAlias(n, path) {
			return
		}
		defer delete(d.aliases, n)
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		d.decode(n, v, path)
		return
	}
	for i := len(n.Content) - 1; i >= 0; i-- {
		d.decode(n.Content[i], v, path)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		setDefaults(s.Index(i))
		d.decode(e, s.Index(i), indexPath(path, i))
	}
	v.Set(s)
}

// setDefaults calls v's setDefaults method, if it has one.
func setDefaults(v reflect.Value) {
	if v.CanAddr() {
		if df, ok := v.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
	}
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || tag != intTag && tag != floatTag {
		d.mismatch(n, path, "an integer")
		return
	}
	s := strings.ReplaceAll(n.Value, "_", "")
	base := intBase(s)
	var err error
	if v.CanInt() {
		var i int64
		if i, err = strconv.ParseInt(s, base, v.Type().Bits()); err == nil {
			v.SetInt(i)
		}
	} else {
		var u uint64
		if u, err = strconv.ParseUint(s, base, v.Type().Bits()); err == nil {
			v.SetUint(u)
		}
	}
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.errorf(n, path, "%s: integer out of range", formatScalar(n))
	case err != nil:
		d.mismatch(n, path, "an integer")
	}
}

// intBase returns the base to parse the integer s in, as strconv.ParseInt
// takes it: 10 unless s has a prefix, as in YAML 1.2: 010 is ten, not
// eight. 0x10, 0o10 and 0b10 are 16, 8 and 2.
func intBase(s string) int {
	if t := strings.TrimLeft(s, "+-"); len(t) > 2 && t[0] == '0' && strings.ContainsRune("xXoObB", rune(t[1])) {
		return 0
	}
	return 10
}

// decodeFloat decodes a number: an integer in any form decodeInt takes, a
// decimal such as 0.5 or 1e3, or one of YAML's .inf, -.inf and .nan, which
// it leaves to validation to reject.
func (d *decoder) decodeFloat(n *yaml.Node, v reflect.Value, path string) {
	tag := n.ShortTag()
	if n.Kind == yaml.ScalarNode && tag == strTag && n.Style == 0 {
		// The YAML parser takes a plain number too large for a float64,
		// such as 1e400, as a string.
		if _, err := strconv.ParseFloat(n.Value, 64); errors.Is(err, strconv.ErrRange) {
			d.errorf(n, path, "%s: number out of range", quoteIfNeeded(n.Value))
			return
		}
	}
	if n.Kind != yaml.ScalarNode || tag != intTag && tag != floatTag {
		d.mismatch(n, path, "a number")
		return
	}
	s := strings.ReplaceAll(n.Value, "_", "")
	var f float64
	var err error
	switch t := strings.TrimLeft(s, "+-"); {
	case strings.EqualFold(t, ".inf"):
		f = math.Inf(1)
		if strings.HasPrefix(s, "-") {
			f = math.Inf(-1)
		}
	case strings.EqualFold(t, ".nan"):
		f = math.NaN()
	case intBase(s) == 0: // 0x10: not a Go float literal without an exponent
		var i int64
		i, err = strconv.ParseInt(s, 0, 64)
		f = float64(i)
	default:
		f, err = strconv.ParseFloat(s, v.Type().Bits())
	}
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.errorf(n, path, "%s: number out of range", formatScalar(n))
	case err != nil:
		d.mismatch(n, path, "a number")
	default:
		v.SetFloat(f)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	const want = "want a duration like 5s"
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || !isText(tag) {
		d.mismatch(n, path, "a duration like 5s")
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if _, nerr := strconv.ParseFloat(n.Value, 64); nerr == nil || tag != strTag {
			// A number without a unit. Only 0 is allowed, as in Go.
			d.errorf(n, path, "%s: %s", formatScalar(n), want)
		} else {
			d.errorf(n, path, "%s: invalid duration", formatScalar(n))
		}
		return
	}
	v.SetInt(int64(dur))
}

// structFields lists the configurable fields of a struct type.
type structFields []structField

type structField struct {
	name  string // from the yaml tag
	index int
}

func fieldsOf(t reflect.Type) structFields {
	var fs structFields
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fs = append(fs, structField{name, i})
	}
	return fs
}

func (fs structFields) lookup(name string) (index int, ok bool) {
	for _, f := range fs {
		if f.name == name {
			return f.index, true
		}
	}
	return 0, false
}

func (fs structFields) names() []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}
