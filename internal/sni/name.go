package sni

// Host names, as ReadServerName returns them and Table matches them: ASCII
// only, compared case-insensitively by lower-casing ASCII letters alone, so
// that no Unicode case folding (the Kelvin sign "\u212a" to "k", say) can make
// two different names equal.

const maxHostname = 253 // bytes, without a trailing dot (RFC 1035 2.3.4)

// lowerASCII returns s with ASCII upper-case letters lower-cased and every
// other byte unchanged. It does not allocate when s has no upper-case letter.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// validHostname reports whether s is a lower-case host name: dot-separated
// labels of 1 to 63 bytes from a-z, 0-9, '-' and '_', at most 253 bytes in
// all, with no trailing dot. It is lenient where real names are ('_', and a
// '-' at either end of a label, are accepted); an IPv4 literal passes.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > maxHostname {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}
