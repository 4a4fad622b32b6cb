package proxyproto

import "net/netip"

// Header is a PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int

	// Local reports whether the header carries no client address: the v2
	// LOCAL command (the upstream's own connection, such as a health
	// check), v1 UNKNOWN, or a v2 PROXY header of family AF_UNSPEC or
	// AF_UNIX. The receiver then uses the connection's own addresses;
	// Source and Dest are the zero AddrPort.
	Local bool

	// Source is the original client's address and Dest the address it
	// connected to, both IPv4 or both IPv6 (an IPv4 client of an IPv6
	// listener shows as IPv4-mapped IPv6; use Addr().Unmap() to see it as
	// IPv4). Valid unless Local.
	Source, Dest netip.AddrPort

	// TLVs are the raw type-length-value bytes that follow the addresses
	// of a v2 PROXY header, nil if there are none and always nil for v1 and
	// LOCAL headers. Read has checked that they are whole TLVs (one type
	// byte, a two-byte big-endian length, that many value bytes), but not
	// what they mean. The slice aliases the buffer given to Read.
	TLVs []byte
}

// MaxV1Len is the length of the longest v1 header, CRLF included: the
// spec's worst case, "PROXY UNKNOWN" followed by two full-length IPv6
// addresses and two five-digit ports. Read refuses a line whose CRLF is not
// within it with ReasonTooLong.
const MaxV1Len = 107

// maxV2Body is the largest v2 length field (addresses and TLVs) that Read
// accepts.
const maxV2Body = 2048

// MaxHeaderLen is the length of the longest header Read accepts: a v2
// header of 16 fixed bytes and at most 2048 bytes of addresses and TLVs.
// It is also the size of the buffer Read wants.
//
// The v2 length field could announce up to 65535 bytes; the bound keeps
// what one waiting connection can make tcplb hold small. 2048 bytes take
// the largest address block (216 bytes, AF_UNIX) and the TLVs that senders
// actually use with room to spare: ALPN, authority (a server name, at most
// 255 bytes), unique ID (at most 128), CRC32C, the SSL TLV with its
// version, cipher, algorithms and client CN, and cloud providers' endpoint
// IDs together take a few hundred bytes. What it leaves out is a sender
// that forwards whole client certificates (PP2_SUBTYPE_SSL_CLIENT_CERT),
// whose headers are refused with ReasonTooLong.
const MaxHeaderLen = 16 + maxV2Body
