package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// AppendV1 appends to b a v1 header for a TCP connection from src to dst
// and returns the extended slice. Both IPv4 gives a TCP4 line; otherwise
// the line is TCP6, and an IPv4 address in it is written IPv4-mapped
// ("::ffff:102:304"), so that a mixed pair keeps the real addresses rather
// than falling back to UNKNOWN. Zones are dropped. If src or dst is not
// valid, AppendV1 appends AppendV1Unknown's header instead. IPv6 addresses
// are written in hex groups only, as the spec asks. AppendV1 allocates
// only if b is too short.
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	if !src.IsValid() || !dst.IsValid() {
		return AppendV1Unknown(b)
	}
	s, d := src.Addr().WithZone(""), dst.Addr().WithZone("")
	if s.Is4() && d.Is4() {
		b = append(b, "PROXY TCP4 "...)
		b = s.AppendTo(b)
		b = append(b, ' ')
		b = d.AppendTo(b)
	} else {
		b = append(b, "PROXY TCP6 "...)
		b = appendIPv6(b, netip.AddrFrom16(s.As16()))
		b = append(b, ' ')
		b = appendIPv6(b, netip.AddrFrom16(d.As16()))
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, "\r\n"...)
}

// appendIPv6 appends IPv6 address a in hex groups: netip writes an
// IPv4-mapped address with a dotted tail, which the spec's v1 grammar
// does not have.
func appendIPv6(b []byte, a netip.Addr) []byte {
	if !a.Is4In6() {
		return a.AppendTo(b)
	}
	ip := a.As16()
	b = append(b, "::ffff:"...)
	b = strconv.AppendUint(b, uint64(ip[12])<<8|uint64(ip[13]), 16)
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ip[14])<<8|uint64(ip[15]), 16)
}

// AppendV1Unknown appends to b the v1 header "PROXY UNKNOWN\r\n", which
// tells the receiver to use the connection's own addresses, and returns
// the extended slice.
func AppendV1Unknown(b []byte) []byte {
	return append(b, "PROXY UNKNOWN\r\n"...)
}

// AppendV2 appends to b a v2 PROXY header, without TLVs, for a TCP
// connection from src to dst and returns the extended slice. Both IPv4
// gives family AF_INET; otherwise the family is AF_INET6, and an IPv4
// address is written IPv4-mapped, so that a mixed pair keeps the real
// addresses. If src or dst is not valid, AppendV2 appends AppendV2Local's
// header instead. AppendV2 allocates only if b is too short.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	return appendV2(b, src, dst, famTCP4, famTCP6)
}

// AppendV2Datagram is AppendV2 for UDP (transport SOCK_DGRAM): the header
// that goes in front of each datagram of a flow from src to dst, as the
// spec describes for datagrams.
func AppendV2Datagram(b []byte, src, dst netip.AddrPort) []byte {
	return appendV2(b, src, dst, famUDP4, famUDP6)
}

func appendV2(b []byte, src, dst netip.AddrPort, fam4, fam6 byte) []byte {
	if !src.IsValid() || !dst.IsValid() {
		return AppendV2Local(b)
	}
	s, d := src.Addr(), dst.Addr()
	b = append(b, sigV2...)
	if s.Is4() && d.Is4() {
		b = append(b, verCmdProxy, fam4, 0, addrLen4)
		s4, d4 := s.As4(), d.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, verCmdProxy, fam6, 0, addrLen6)
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// AppendV2Local appends to b a v2 LOCAL header, family AF_UNSPEC and no
// addresses, which tells the receiver to use the connection's own
// addresses, and returns the extended slice.
func AppendV2Local(b []byte) []byte {
	b = append(b, sigV2...)
	return append(b, verCmdLocal, famUnspec, 0, 0)
}
