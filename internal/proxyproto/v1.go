package proxyproto

import (
	"bytes"
	"fmt"
	"net/netip"
)

// sigV1 starts every v1 header.
const sigV1 = "PROXY"

// parseV1 is parse for b starting with 'P'.
func parseV1(b []byte, scanned *int) (Header, int, *Error) {
	if !matchPrefix(b, sigV1) {
		return Header{}, 0, notProxy(b)
	}
	if len(b) <= len(sigV1) {
		return Header{}, 0, nil
	}
	if b[len(sigV1)] != ' ' {
		return Header{}, 0, malformed("no space after PROXY")
	}
	size, err := lineEnd(b, scanned)
	if size == 0 || err != nil {
		return Header{}, 0, err
	}
	h, err := parseLine(b[len(sigV1)+1 : size-2])
	if err != nil {
		return Header{}, 0, err
	}
	return h, size, nil
}

// lineEnd returns the length of the v1 line in b, CRLF included, or 0 if b
// does not hold all of it yet. The bytes before *scanned are known to be
// neither CR nor LF; lineEnd advances it.
func lineEnd(b []byte, scanned *int) (int, *Error) {
	end := min(len(b), MaxV1Len)
	for i := *scanned; i < end; i++ {
		switch b[i] {
		case '\n':
			return 0, malformed("LF without CR")
		case '\r':
			switch {
			case i+1 >= MaxV1Len:
				return 0, tooLongV1()
			case i+1 == len(b):
				*scanned = i
				return 0, nil
			case b[i+1] != '\n':
				return 0, malformed("CR without LF")
			}
			return i + 2, nil
		}
	}
	*scanned = end
	if len(b) >= MaxV1Len {
		return 0, tooLongV1()
	}
	return 0, nil
}

// tooLongV1 returns the error for a v1 line without a CRLF in MaxV1Len
// bytes.
func tooLongV1() *Error {
	return &Error{Reason: ReasonTooLong, Detail: fmt.Sprintf("v1: no CRLF in the first %d bytes", MaxV1Len)}
}

// malformed returns a ReasonMalformed error for a v1 line.
func malformed(detail string) *Error {
	return &Error{Reason: ReasonMalformed, Detail: "v1: " + detail}
}

// parseLine parses what follows "PROXY " in a v1 line, CRLF excluded.
func parseLine(line []byte) (Header, *Error) {
	proto, fields, more := cutSpace(line)
	var v6 bool
	switch string(proto) {
	case "UNKNOWN":
		// The spec has the receiver ignore the rest of the line.
		return Header{Version: 1, Local: true}, nil
	case "TCP4":
	case "TCP6":
		v6 = true
	case "":
		return Header{}, malformed("two spaces after PROXY")
	default:
		if !alnum(proto) {
			return Header{}, malformed(fmt.Sprintf("bad protocol %q", proto))
		}
		return Header{}, &Error{Reason: ReasonFamily, Detail: fmt.Sprintf("v1: unknown protocol %q", proto)}
	}
	if !more {
		return Header{}, malformed(fmt.Sprintf("%s without addresses", proto))
	}
	var f [4][]byte // source, destination, source port, destination port
	for i := range f {
		f[i], fields, more = cutSpace(fields)
		switch {
		case len(f[i]) == 0:
			return Header{}, malformed("empty field: a doubled or trailing space")
		case i < len(f)-1 && !more:
			return Header{}, malformed(fmt.Sprintf("%d fields after %s, want 4", i+1, proto))
		case i == len(f)-1 && more:
			return Header{}, malformed(fmt.Sprintf("more than 4 fields after %s", proto))
		}
	}
	src, err := parseAddr(f[0], v6, "source")
	if err != nil {
		return Header{}, err
	}
	dst, err := parseAddr(f[1], v6, "destination")
	if err != nil {
		return Header{}, err
	}
	sport, ok := parsePort(f[2])
	if !ok {
		return Header{}, malformed(fmt.Sprintf("bad source port %q", f[2]))
	}
	dport, ok := parsePort(f[3])
	if !ok {
		return Header{}, malformed(fmt.Sprintf("bad destination port %q", f[3]))
	}
	return Header{
		Version: 1,
		Source:  netip.AddrPortFrom(src, sport),
		Dest:    netip.AddrPortFrom(dst, dport),
	}, nil
}

// alnum reports whether s is all ASCII letters and digits, as a protocol
// name is.
func alnum(s []byte) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// cutSpace slices s around its first space, reporting whether there is
// one.
func cutSpace(s []byte) (before, after []byte, found bool) {
	if i := bytes.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, nil, false
}

// parseAddr parses a v1 address of the family the line announced; which
// names it in errors.
func parseAddr(s []byte, v6 bool, which string) (netip.Addr, *Error) {
	a4, ok4 := parseIPv4(s)
	a6, ok6 := parseIPv6(s)
	switch {
	case !v6 && ok4:
		return netip.AddrFrom4(a4), nil
	case v6 && ok6:
		return netip.AddrFrom16(a6), nil
	case ok4 || ok6:
		fam := "TCP4"
		if v6 {
			fam = "TCP6"
		}
		return netip.Addr{}, &Error{Reason: ReasonFamily, Detail: fmt.Sprintf("v1: %s address %q in a %s line", which, s, fam)}
	}
	return netip.Addr{}, malformed(fmt.Sprintf("bad %s address %q", which, s))
}

// parsePort parses a decimal port, 0 to 65535, without sign or leading
// zeros.
func parsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 0xffff {
		return 0, false
	}
	return uint16(v), true
}

// parseIPv4 parses an IPv4 address as netip.ParseAddr does: four decimal
// numbers, 0 to 255, without leading zeros, separated by single dots. It
// does not allocate.
func parseIPv4(s []byte) (ip [4]byte, ok bool) {
	var (
		field  int // index in ip
		val    int
		digits int
	)
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || field == len(ip) {
				return ip, false
			}
			ip[field] = byte(val)
			field, val, digits = field+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && val == 0) {
			return ip, false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return ip, false
		}
	}
	return ip, field == len(ip)
}

// parseIPv6 parses an IPv6 address as netip.ParseAddr does, but without a
// zone: up to eight groups of one to four hex digits separated by colons,
// at most one "::" standing for one or more groups of zeros, and perhaps
// a dotted IPv4 address in place of the last two groups. It does not
// allocate.
func parseIPv6(s []byte) (ip [16]byte, ok bool) {
	gap := -1 // index in ip where "::" stands, if any
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		gap = 0
		s = s[2:]
	}
	i := 0 // index in ip
	for i < len(ip) && len(s) > 0 {
		// One group, or the dotted IPv4 tail.
		val, digits := 0, 0
		for digits < len(s) {
			d := unhex(s[digits])
			if d < 0 {
				break
			}
			if digits == 4 {
				return ip, false
			}
			val = val<<4 | d
			digits++
		}
		if digits < len(s) && s[digits] == '.' {
			if (gap < 0 && i != 12) || i > 12 {
				return ip, false
			}
			a4, ok := parseIPv4(s)
			if !ok {
				return ip, false
			}
			copy(ip[i:], a4[:])
			i += 4
			s = nil
			break
		}
		if digits == 0 {
			return ip, false
		}
		ip[i], ip[i+1] = byte(val>>8), byte(val)
		i += 2
		s = s[digits:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return ip, false
		}
		s = s[1:]
		if s[0] == ':' {
			if gap >= 0 {
				return ip, false
			}
			gap = i
			s = s[1:]
		}
	}
	if len(s) != 0 {
		return ip, false
	}
	if i < len(ip) {
		if gap < 0 {
			return ip, false
		}
		n := len(ip) - i
		copy(ip[gap+n:], ip[gap:i])
		clear(ip[gap : gap+n])
	} else if gap >= 0 {
		return ip, false
	}
	return ip, true
}

// unhex returns the value of hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
