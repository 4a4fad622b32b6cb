package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TLV types from the spec.
const (
	tlvALPN      = 0x01
	tlvAuthority = 0x02
	tlvNoop      = 0x04
)

// v2 builds a v2 header from its 13th byte on, the length computed from
// the body.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte(sigV2), verCmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[v2Len:], uint16(len(b)-v2FixedLen))
	return b
}

// v2Len16 builds a v2 header whose length field is n, whatever the body.
func v2Len16(verCmd, fam byte, n uint16, body ...[]byte) []byte {
	b := v2(verCmd, fam, body...)
	binary.BigEndian.PutUint16(b[v2Len:], n)
	return b
}

// tlv encodes one TLV.
func tlv(typ byte, val string) []byte {
	return append([]byte{typ, byte(len(val) >> 8), byte(len(val))}, val...)
}

// addrs4 and addrs6 are v2 address blocks.
func addrs4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func addrs6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func unixAddrs(src, dst string) []byte {
	b := make([]byte, addrLenUnix)
	copy(b, src)
	copy(b[108:], dst)
	return b
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

const (
	ffff6   = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	httpReq = "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"
)

var validTests = []struct {
	name string
	in   []byte
	want Header
	rest string // what follows the header in in
}{
	{
		name: "v1 TCP4",
		in:   []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		want: Header{Version: 1, Source: ap("192.168.0.1:56324"), Dest: ap("192.168.0.11:443")},
	},
	{
		name: "v1 TCP4 then data",
		in:   []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + httpReq),
		want: Header{Version: 1, Source: ap("192.168.0.1:56324"), Dest: ap("192.168.0.11:443")},
		rest: httpReq,
	},
	{
		name: "v1 TCP4 longest",
		in:   []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
		want: Header{Version: 1, Source: ap("255.255.255.255:65535"), Dest: ap("255.255.255.255:65535")},
	},
	{
		name: "v1 TCP4 port 0",
		in:   []byte("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n"),
		want: Header{Version: 1, Source: ap("0.0.0.0:0"), Dest: ap("10.0.0.1:0")},
	},
	{
		name: "v1 TCP6",
		in:   []byte("PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 56324 443\r\nhello"),
		want: Header{Version: 1, Source: ap("[2001:db8::1]:56324"), Dest: ap("[2001:db8::2]:443")},
		rest: "hello",
	},
	{
		name: "v1 TCP6 longest",
		in:   []byte("PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"),
		want: Header{Version: 1, Source: netip.AddrPortFrom(netip.MustParseAddr(ffff6), 65535), Dest: netip.AddrPortFrom(netip.MustParseAddr(ffff6), 65535)},
	},
	{
		name: "v1 TCP6 IPv4-mapped",
		in:   []byte("PROXY TCP6 ::ffff:1.2.3.4 ::ffff:a00:1 1 2\r\n"),
		want: Header{Version: 1, Source: ap("[::ffff:1.2.3.4]:1"), Dest: ap("[::ffff:10.0.0.1]:2")},
	},
	{
		name: "v1 TCP6 unspecified",
		in:   []byte("PROXY TCP6 :: ::1 1 2\r\n"),
		want: Header{Version: 1, Source: ap("[::]:1"), Dest: ap("[::1]:2")},
	},
	{
		name: "v1 UNKNOWN",
		in:   []byte("PROXY UNKNOWN\r\n"),
		want: Header{Version: 1, Local: true},
	},
	{
		name: "v1 UNKNOWN then data",
		in:   []byte("PROXY UNKNOWN\r\n" + httpReq),
		want: Header{Version: 1, Local: true},
		rest: httpReq,
	},
	{
		name: "v1 UNKNOWN with fields",
		in:   []byte("PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n"),
		want: Header{Version: 1, Local: true},
	},
	{
		name: "v1 UNKNOWN with anything",
		in:   []byte("PROXY UNKNOWN  what\x00ever \xff\r\nx"),
		want: Header{Version: 1, Local: true},
		rest: "x",
	},
	{
		name: "v1 UNKNOWN longest",
		in:   []byte("PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n"),
		want: Header{Version: 1, Local: true},
	},
	{
		name: "v2 PROXY TCP4",
		in:   v2(0x21, 0x11, addrs4("192.168.0.1", "192.168.0.11", 56324, 443)),
		want: Header{Version: 2, Source: ap("192.168.0.1:56324"), Dest: ap("192.168.0.11:443")},
	},
	{
		name: "v2 PROXY TCP4 then data",
		in:   cat(v2(0x21, 0x11, addrs4("192.168.0.1", "192.168.0.11", 56324, 443)), []byte(httpReq)),
		want: Header{Version: 2, Source: ap("192.168.0.1:56324"), Dest: ap("192.168.0.11:443")},
		rest: httpReq,
	},
	{
		name: "v2 PROXY TCP4 ports 0 and 65535",
		in:   v2(0x21, 0x11, addrs4("0.0.0.0", "255.255.255.255", 0, 65535)),
		want: Header{Version: 2, Source: ap("0.0.0.0:0"), Dest: ap("255.255.255.255:65535")},
	},
	{
		name: "v2 PROXY TCP6",
		in:   v2(0x21, 0x21, addrs6("2001:db8::1", "2001:db8::2", 56324, 443)),
		want: Header{Version: 2, Source: ap("[2001:db8::1]:56324"), Dest: ap("[2001:db8::2]:443")},
	},
	{
		name: "v2 PROXY TCP6 IPv4-mapped",
		in:   v2(0x21, 0x21, addrs6("::ffff:1.2.3.4", "::1", 1, 2)),
		want: Header{Version: 2, Source: ap("[::ffff:1.2.3.4]:1"), Dest: ap("[::1]:2")},
	},
	{
		name: "v2 PROXY TCP4 with TLVs",
		in: v2(0x21, 0x11, addrs4("10.0.0.1", "10.0.0.2", 1000, 443),
			tlv(tlvALPN, "h2"), tlv(tlvAuthority, "example.com"), tlv(tlvNoop, "")),
		want: Header{Version: 2, Source: ap("10.0.0.1:1000"), Dest: ap("10.0.0.2:443"),
			TLVs: cat(tlv(tlvALPN, "h2"), tlv(tlvAuthority, "example.com"), tlv(tlvNoop, ""))},
	},
	{
		name: "v2 PROXY TCP6 with TLVs then data",
		in: cat(v2(0x21, 0x21, addrs6("2001:db8::1", "2001:db8::2", 1, 2),
			tlv(tlvAuthority, "example.com")), []byte("\x16\x03\x01")),
		want: Header{Version: 2, Source: ap("[2001:db8::1]:1"), Dest: ap("[2001:db8::2]:2"),
			TLVs: tlv(tlvAuthority, "example.com")},
		rest: "\x16\x03\x01",
	},
	{
		name: "v2 PROXY longest",
		in:   v2(0x21, 0x11, addrs4("10.0.0.1", "10.0.0.2", 1, 2), tlv(tlvNoop, strings.Repeat("x", maxV2Body-addrLen4-3))),
		want: Header{Version: 2, Source: ap("10.0.0.1:1"), Dest: ap("10.0.0.2:2"),
			TLVs: tlv(tlvNoop, strings.Repeat("x", maxV2Body-addrLen4-3))},
	},
	{
		name: "v2 LOCAL",
		in:   v2(0x20, 0x00),
		want: Header{Version: 2, Local: true},
	},
	{
		name: "v2 LOCAL then data",
		in:   cat(v2(0x20, 0x00), []byte("PING\r\n")),
		want: Header{Version: 2, Local: true},
		rest: "PING\r\n",
	},
	{
		name: "v2 LOCAL with addresses and TLVs",
		in:   v2(0x20, 0x11, addrs4("10.0.0.1", "10.0.0.2", 1, 2), tlv(tlvALPN, "h2")),
		want: Header{Version: 2, Local: true},
	},
	{
		name: "v2 LOCAL ignores family and block",
		in:   v2(0x20, 0xff, []byte{1, 2, 3, 4, 5}),
		want: Header{Version: 2, Local: true},
	},
	{
		name: "v2 PROXY UNSPEC",
		in:   v2(0x21, 0x00),
		want: Header{Version: 2, Local: true},
	},
	{
		name: "v2 PROXY UNSPEC with TLV",
		in:   v2(0x21, 0x00, tlv(tlvALPN, "h2")),
		want: Header{Version: 2, Local: true, TLVs: tlv(tlvALPN, "h2")},
	},
	{
		name: "v2 PROXY UNIX stream",
		in:   cat(v2(0x21, 0x31, unixAddrs("/run/client.sock", "/run/tcplb.sock")), []byte("data")),
		want: Header{Version: 2, Local: true},
		rest: "data",
	},
}

// headerEqual reports whether a and b are the same header.
func headerEqual(a, b Header) bool {
	return a.Version == b.Version && a.Local == b.Local && a.Source == b.Source && a.Dest == b.Dest && bytes.Equal(a.TLVs, b.TLVs)
}

// oneByteReader returns its bytes one per Read, then io.EOF.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestReadValid(t *testing.T) {
	for _, tt := range validTests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, MaxHeaderLen)
			h, rest, err := Read(bytes.NewReader(tt.in), buf)
			if err != nil || !headerEqual(h, tt.want) || string(rest) != tt.rest {
				t.Fatalf("Read(%q) = %+v, %q, %v, want %+v, %q, nil", tt.in, h, rest, err, tt.want, tt.rest)
			}
			if tt.want.Version == 1 && h.TLVs != nil {
				t.Errorf("Read(%q).TLVs = %q, want nil for v1", tt.in, h.TLVs)
			}

			// A byte at a time: same header, and nothing read past it.
			h, rest, err = Read(&oneByteReader{tt.in}, buf)
			if err != nil || !headerEqual(h, tt.want) || len(rest) != 0 {
				t.Fatalf("Read(one byte at a time %q) = %+v, %q, %v, want %+v, \"\", nil", tt.in, h, rest, err, tt.want)
			}
		})
	}
}

var errorTests = []struct {
	name   string
	in     []byte
	reason string
}{
	// Not a header at all.
	{"empty", nil, ReasonTruncated},
	{"HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), ReasonNotProxy},
	{"TLS", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, ReasonNotProxy},
	{"TLS first bytes", []byte{0x16, 0x03}, ReasonNotProxy},
	{"POST", []byte("POST / HTTP/1.1\r\n"), ReasonNotProxy},
	{"PROXZ", []byte("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonNotProxy},
	{"CR then not LF", []byte("\rX"), ReasonNotProxy},
	{"blank line then HTTP", []byte("\r\nGET / HTTP/1.1\r\n"), ReasonNotProxy},
	{"v2 signature off by one", []byte("\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c"), ReasonNotProxy},
	{"lowercase proxy", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonNotProxy},
	{"NUL", []byte{0}, ReasonNotProxy},

	// v1 framing.
	{"v1 PROXY alone", []byte("PROXY"), ReasonTruncated},
	{"v1 PROXY CRLF", []byte("PROXY\r\n"), ReasonMalformed},
	{"v1 PROXY space CRLF", []byte("PROXY \r\n"), ReasonMalformed},
	{"v1 PROXYX", []byte("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 too long 108 no CRLF", []byte("PROXY UNKNOWN " + strings.Repeat("a", 108-14)), ReasonTooLong},
	{"v1 too long 107 no CRLF", []byte("PROXY UNKNOWN " + strings.Repeat("a", 107-14)), ReasonTooLong},
	{"v1 too long CRLF at 108", []byte("PROXY UNKNOWN " + strings.Repeat("a", 108-14-2) + "\r\n"), ReasonTooLong},
	{"v1 long line six-digit port", []byte("PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 655350\r\n"), ReasonMalformed},
	{"v1 LF only", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ReasonMalformed},
	{"v1 CR only", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET"), ReasonMalformed},
	{"v1 LF CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r"), ReasonMalformed},
	{"v1 UNKNOWN LF only", []byte("PROXY UNKNOWN\n"), ReasonMalformed},
	{"v1 incomplete", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), ReasonTruncated},
	{"v1 incomplete CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), ReasonTruncated},

	// v1 fields.
	{"v1 double space after PROXY", []byte("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 double space", []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 double space between ports", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"), ReasonMalformed},
	{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ReasonMalformed},
	{"v1 tab", []byte("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 UNKNOWN NUL", []byte("PROXY UNKNOWN\x00\r\n"), ReasonMalformed},
	{"v1 TCP4 alone", []byte("PROXY TCP4\r\n"), ReasonMalformed},
	{"v1 three fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ReasonMalformed},
	{"v1 five fields", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ReasonMalformed},
	{"v1 UNKNOWNX", []byte("PROXY UNKNOWNX\r\n"), ReasonFamily},
	{"v1 TCP5", []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 tcp4", []byte("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 UDP4", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 bad IPv4 1.2.3", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv4 five parts", []byte("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv4 256", []byte("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv4 leading zero", []byte("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv4 trailing dot", []byte("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv4 name", []byte("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), ReasonMalformed},
	{"v1 IPv6 in TCP4", []byte("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 IPv4-mapped in TCP4", []byte("PROXY TCP4 1.2.3.4 ::ffff:5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 IPv4 in TCP6", []byte("PROXY TCP6 2001:db8::1 5.6.7.8 1 2\r\n"), ReasonFamily},
	{"v1 bad IPv6", []byte("PROXY TCP6 2001:db8:::1 ::1 1 2\r\n"), ReasonMalformed},
	{"v1 bad IPv6 group", []byte("PROXY TCP6 2001:db8::12345 ::1 1 2\r\n"), ReasonMalformed},
	{"v1 IPv6 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), ReasonMalformed},
	{"v1 IPv6 brackets", []byte("PROXY TCP6 [::1] ::1 1 2\r\n"), ReasonMalformed},
	{"v1 port 65536", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), ReasonMalformed},
	{"v1 port 99999", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"), ReasonMalformed},
	{"v1 port six digits", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n"), ReasonMalformed},
	{"v1 negative port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), ReasonMalformed},
	{"v1 plus port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), ReasonMalformed},
	{"v1 non-digit port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 80a 2\r\n"), ReasonMalformed},
	{"v1 hex port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n"), ReasonMalformed},
	{"v1 leading zero port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), ReasonMalformed},
	{"v1 port 00", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n"), ReasonMalformed},

	// v2 fixed part.
	{"v2 version 1", v2(0x11, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonVersion},
	{"v2 version 3", v2(0x31, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonVersion},
	{"v2 version 0 LOCAL", v2(0x00, 0x00), ReasonVersion},
	{"v2 command 2", v2(0x22, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonCommand},
	{"v2 command 15", v2(0x2f, 0x00), ReasonCommand},
	{"v2 family 0x12 UDP4", v2(0x21, 0x12, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonFamily},
	{"v2 family 0x22 UDP6", v2(0x21, 0x22, addrs6("::1", "::2", 1, 2)), ReasonFamily},
	{"v2 family 0x32 UNIX dgram", v2(0x21, 0x32, unixAddrs("/a", "/b")), ReasonFamily},
	{"v2 family 0x10 INET unspec", v2(0x21, 0x10, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonFamily},
	{"v2 family 0x01 unspec stream", v2(0x21, 0x01), ReasonFamily},
	{"v2 family 0x13", v2(0x21, 0x13, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonFamily},
	{"v2 family 0x41", v2(0x21, 0x41, addrs6("::1", "::2", 1, 2)), ReasonFamily},
	{"v2 TCP4 length 11", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2)[:11]), ReasonFamily},
	{"v2 TCP4 length 0", v2(0x21, 0x11), ReasonFamily},
	{"v2 TCP6 length 12", v2(0x21, 0x21, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonFamily},
	{"v2 UNIX length 36", v2(0x21, 0x31, addrs6("::1", "::2", 1, 2)), ReasonFamily},
	{"v2 length 2049", v2Len16(0x21, 0x11, maxV2Body+1), ReasonTooLong},
	{"v2 length 65535", v2Len16(0x21, 0x11, 0xffff), ReasonTooLong},
	{"v2 LOCAL length 65535", v2Len16(0x20, 0x00, 0xffff), ReasonTooLong},
	{"v2 signature only", []byte(sigV2), ReasonTruncated},

	// v2 TLVs.
	{"v2 TLV past the end", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvALPN, "h2")[:4]), ReasonTLV},
	{"v2 TLV length 0xffff", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), []byte{tlvALPN, 0xff, 0xff, 'h', '2'}), ReasonTLV},
	{"v2 TLV second past the end", v2(0x21, 0x21, addrs6("::1", "::2", 1, 2), tlv(tlvALPN, "h2"), []byte{tlvAuthority, 0, 5, 'a'}), ReasonTLV},
	{"v2 TLV header cut", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), []byte{tlvNoop, 0}), ReasonTLV},
	{"v2 TLV one byte", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvALPN, "h2"), []byte{tlvNoop}), ReasonTLV},
	{"v2 UNSPEC TLV past the end", v2(0x21, 0x00, []byte{tlvNoop, 0, 9}), ReasonTLV},
	{"v2 UNIX TLV past the end", v2(0x21, 0x31, unixAddrs("/a", "/b"), []byte{tlvNoop, 0, 9}), ReasonTLV},
	{"v2 truncated body", v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2))[:20], ReasonTruncated},
	{"v2 length beyond the data", v2Len16(0x21, 0x11, 100, addrs4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonTruncated},
}

// knownReason reports whether r is one of the Reason constants.
func knownReason(r string) bool { return slices.Contains(Reasons(), r) }

// checkError fails t unless err is an *Error for reason.
func checkError(t *testing.T, call string, h Header, err error, reason string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Reason != reason {
		t.Fatalf("%s = %+v, %v, want an *Error with Reason %q", call, h, err, reason)
	}
	if _, ok := err.(*Error); !ok {
		t.Errorf("%s: error of type %T, want *Error", call, err)
	}
	if !strings.HasPrefix(err.Error(), "proxy protocol: ") || pe.Detail == "" {
		t.Errorf("%s: error %q, want \"proxy protocol: \" and a detail", call, err)
	}
	if reason == ReasonTruncated && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("%s: error %v does not wrap io.ErrUnexpectedEOF", call, err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, MaxHeaderLen)
			h, rest, err := Read(bytes.NewReader(tt.in), buf)
			checkError(t, "Read("+quoteShort(tt.in)+")", h, err, tt.reason)
			if !bytes.HasPrefix(tt.in, rest) {
				t.Errorf("Read(%s): rest %q is not what was read", quoteShort(tt.in), rest)
			}
			// The reason does not depend on how the bytes arrive.
			h, _, err = Read(&oneByteReader{tt.in}, buf)
			checkError(t, "Read(one byte at a time "+quoteShort(tt.in)+")", h, err, tt.reason)
		})
	}
}

// quoteShort quotes b for a test message, shortened if long.
func quoteShort(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// TestReadTruncated cuts every valid header at every length: all but the
// whole header are truncated.
func TestReadTruncated(t *testing.T) {
	buf := make([]byte, MaxHeaderLen)
	for _, tt := range validTests {
		hdr := tt.in[:len(tt.in)-len(tt.rest)]
		for n := 0; n < len(hdr); n++ {
			h, rest, err := Read(bytes.NewReader(hdr[:n]), buf)
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason != ReasonTruncated || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: Read(first %d of %d bytes) = %+v, %v, want Reason truncated", tt.name, n, len(hdr), h, err)
			}
			if !bytes.Equal(rest, hdr[:n]) {
				t.Fatalf("%s: Read(first %d of %d bytes): rest %q, want the bytes read", tt.name, n, len(hdr), rest)
			}
		}
	}
}

// scriptedReader returns its chunks one per Read and fails the test if it
// is read once more.
type scriptedReader struct {
	t      *testing.T
	chunks [][]byte
}

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		r.t.Errorf("Read called after the bytes that decide")
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if n < len(r.chunks[0]) {
		r.t.Fatalf("scriptedReader: chunk of %d bytes into a buffer of %d", len(r.chunks[0]), len(p))
	}
	r.chunks = r.chunks[1:]
	return n, nil
}

// TestReadStopsEarly checks that Read decides as soon as it can and does
// not read once more: it returns at the end of the header, or at the
// first byte that rules one out.
func TestReadStopsEarly(t *testing.T) {
	v1 := []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
	v2h := v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvALPN, "h2"))
	tests := []struct {
		name   string
		chunks []string
		reason string // empty: a header
		rest   string
	}{
		{"v1 in pieces", []string{"P", "ROXY TCP4 1.2", ".3.4 5.6.7.8 1 2\r", "\nGET /"}, "", "GET /"},
		{"v1 CRLF alone", []string{string(v1[:len(v1)-2]), "\r", "\n"}, "", ""},
		{"v2 in pieces", []string{string(v2h[:1]), string(v2h[1:13]), string(v2h[13:16]), string(v2h[16:20]), string(v2h[20:]) + "data"}, "", "data"},
		{"HTTP first byte", []string{"G"}, ReasonNotProxy, ""},
		{"TLS first byte", []string{"\x16"}, ReasonNotProxy, ""},
		{"POST second byte", []string{"P", "O"}, ReasonNotProxy, ""},
		{"v2 signature breaks", []string{"\r\n\r", "\n\x00\r\nQUI", "X"}, ReasonNotProxy, ""},
		{"v1 no space", []string{"PROXY", "\r"}, ReasonMalformed, ""},
		{"v1 LF", []string{"PROXY UNKNOWN", "\n"}, ReasonMalformed, ""},
		{"v1 107 bytes", []string{"PROXY UNKNOWN ", strings.Repeat("a", 107-14)}, ReasonTooLong, ""},
		{"v2 version at byte 13", []string{sigV2 + "\x11"}, ReasonVersion, ""},
		{"v2 command at byte 13", []string{sigV2, "\x23"}, ReasonCommand, ""},
		{"v2 family at byte 14", []string{sigV2 + "\x21", "\x12"}, ReasonFamily, ""},
		{"v2 length at byte 16", []string{sigV2 + "\x21\x11\x08", "\x01"}, ReasonTooLong, ""},
		{"v2 short length at byte 16", []string{sigV2 + "\x21\x11\x00\x0b"}, ReasonFamily, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptedReader{t: t}
			for _, c := range tt.chunks {
				r.chunks = append(r.chunks, []byte(c))
			}
			h, rest, err := Read(r, make([]byte, MaxHeaderLen))
			if tt.reason != "" {
				checkError(t, "Read", h, err, tt.reason)
			} else if err != nil || string(rest) != tt.rest {
				t.Fatalf("Read = %+v, %q, %v, want a header, %q, nil", h, rest, err, tt.rest)
			}
			if len(r.chunks) != 0 {
				t.Errorf("Read left %d chunks unread", len(r.chunks))
			}
		})
	}
}

// TestReadNotProxyRest checks that a client that sends no header gets its
// first bytes back in rest.
func TestReadNotProxyRest(t *testing.T) {
	in := []byte("GET / HTTP/1.1\r\n\r\n")
	_, rest, err := Read(bytes.NewReader(in), make([]byte, MaxHeaderLen))
	checkError(t, "Read", Header{}, err, ReasonNotProxy)
	if !bytes.Equal(rest, in) {
		t.Errorf("Read(%q): rest %q, want all of it", in, rest)
	}
}

// TestReadSmallBuffer checks that Read works with a buffer shorter than
// MaxHeaderLen, or none, and uses the capacity of a short slice.
func TestReadSmallBuffer(t *testing.T) {
	in := v2(0x21, 0x11, addrs4("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvNoop, strings.Repeat("x", 1000)))
	for _, buf := range [][]byte{nil, make([]byte, 16), make([]byte, 0, MaxHeaderLen)} {
		h, _, err := Read(bytes.NewReader(in), buf)
		if err != nil || h.Source != ap("1.2.3.4:1") {
			t.Errorf("Read(len %d cap %d buffer) = %+v, %v, want a header from 1.2.3.4:1", len(buf), cap(buf), h, err)
		}
	}
	buf := make([]byte, 0, MaxHeaderLen)
	h, _, _ := Read(bytes.NewReader(in), buf)
	if &h.TLVs[0] != &buf[:MaxHeaderLen][v2FixedLen+addrLen4] {
		t.Errorf("Read did not read into the capacity of the buffer given")
	}
}

type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n--
		p[0] = 'P'
		return 1, nil
	}
	return 0, r.err
}

type countReader struct{ n int }

func (r *countReader) Read(p []byte) (int, error) { return r.n, nil }

// timeoutError is a timeout as a net.Error reports it.
type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

func TestReadReaderErrors(t *testing.T) {
	reset := errors.New("connection reset by peer")
	tests := []struct {
		name   string
		r      io.Reader
		reason string
		is     error
	}{
		{"reset at once", &errReader{err: reset}, ReasonRead, reset},
		{"reset after 1 byte", &errReader{n: 1, err: reset}, ReasonRead, reset},
		{"EOF", &errReader{n: 1, err: io.EOF}, ReasonTruncated, io.ErrUnexpectedEOF},
		{"unexpected EOF", &errReader{err: io.ErrUnexpectedEOF}, ReasonTruncated, io.ErrUnexpectedEOF},
		{"deadline", &errReader{n: 1, err: os.ErrDeadlineExceeded}, ReasonTimeout, os.ErrDeadlineExceeded},
		{"net.Error timeout", &errReader{err: timeoutError{}}, ReasonTimeout, timeoutError{}},
		{"no progress", &errReader{n: 1, err: nil}, ReasonRead, io.ErrNoProgress},
		{"negative count", &countReader{-1}, ReasonRead, nil},
		{"count too large", &countReader{MaxHeaderLen + 1}, ReasonRead, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := Read(tt.r, make([]byte, MaxHeaderLen))
			checkError(t, "Read", h, err, tt.reason)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Read: error %v, want one that wraps %v", err, tt.is)
			}
		})
	}
}

// TestReadConn reads headers from real TCP connections: a header and data
// in one segment, and a header cut short by a read deadline.
func TestReadConn(t *testing.T) {
	t.Run("header and data", func(t *testing.T) {
		client, server := tcpPair(t)
		hdr := AppendV2(nil, ap("[2001:db8::1]:5000"), ap("[2001:db8::2]:443"))
		if _, err := client.Write(append(hdr, "hello"...)); err != nil {
			t.Fatal(err)
		}
		if err := client.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, rest, err := Read(server, make([]byte, MaxHeaderLen))
		if err != nil || h.Source != ap("[2001:db8::1]:5000") {
			t.Fatalf("Read = %+v, %q, %v, want a header from [2001:db8::1]:5000", h, rest, err)
		}
		more, err := io.ReadAll(server)
		if err != nil || string(rest)+string(more) != "hello" {
			t.Errorf("data after the header = %q + %q, %v, want \"hello\"", rest, more, err)
		}
	})

	for _, tt := range []struct {
		name string
		pair func(t *testing.T) (client, server net.Conn)
	}{{"tcp", tcpPair}, {"pipe", pipePair}} {
		t.Run("half a header then silence "+tt.name, func(t *testing.T) {
			client, server := tt.pair(t)
			hdr := []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
			go client.Write(hdr[:len(hdr)/2]) // net.Pipe blocks until read
			start := time.Now()
			server.SetReadDeadline(start.Add(100 * time.Millisecond))
			h, rest, err := Read(server, make([]byte, MaxHeaderLen))
			if d := time.Since(start); d > time.Second {
				t.Errorf("Read returned after %v, want about 100ms", d)
			}
			checkError(t, "Read", h, err, ReasonTimeout)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read: error %v, want one that wraps os.ErrDeadlineExceeded", err)
			}
			if !bytes.Equal(rest, hdr[:len(hdr)/2]) {
				t.Errorf("Read: rest %q, want the %d bytes sent", rest, len(hdr)/2)
			}
		})
	}
}

// tcpPair returns both ends of a TCP connection on 127.0.0.1, closed when
// the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func pipePair(t *testing.T) (client, server net.Conn) {
	client, server = net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		v1       string
		v2       []byte
	}{
		{
			name: "IPv4",
			src:  ap("192.168.0.1:56324"), dst: ap("192.168.0.11:443"),
			v1: "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
			v2: v2(0x21, 0x11, addrs4("192.168.0.1", "192.168.0.11", 56324, 443)),
		},
		{
			name: "IPv6",
			src:  ap("[2001:db8::1]:1"), dst: ap("[2001:db8:0:0:1::2]:65535"),
			v1: "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:2 1 65535\r\n",
			v2: v2(0x21, 0x21, addrs6("2001:db8::1", "2001:db8::1:0:0:2", 1, 65535)),
		},
		{
			name: "IPv4-mapped",
			src:  ap("[::ffff:1.2.3.4]:0"), dst: ap("[::ffff:10.0.0.1]:80"),
			v1: "PROXY TCP6 ::ffff:102:304 ::ffff:a00:1 0 80\r\n",
			v2: v2(0x21, 0x21, addrs6("::ffff:1.2.3.4", "::ffff:10.0.0.1", 0, 80)),
		},
		{
			name: "mixed",
			src:  ap("1.2.3.4:1000"), dst: ap("[2001:db8::2]:443"),
			v1: "PROXY TCP6 ::ffff:102:304 2001:db8::2 1000 443\r\n",
			v2: v2(0x21, 0x21, addrs6("::ffff:1.2.3.4", "2001:db8::2", 1000, 443)),
		},
		{
			name: "zone dropped",
			src:  ap("[fe80::1%eth0]:1"), dst: ap("[fe80::2%eth0]:2"),
			v1: "PROXY TCP6 fe80::1 fe80::2 1 2\r\n",
			v2: v2(0x21, 0x21, addrs6("fe80::1", "fe80::2", 1, 2)),
		},
		{
			name: "invalid source",
			src:  netip.AddrPort{}, dst: ap("1.2.3.4:1"),
			v1: "PROXY UNKNOWN\r\n",
			v2: v2(0x20, 0x00),
		},
		{
			name: "invalid destination",
			src:  ap("1.2.3.4:1"), dst: netip.AddrPort{},
			v1: "PROXY UNKNOWN\r\n",
			v2: v2(0x20, 0x00),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendV1([]byte("x"), tt.src, tt.dst); string(got) != "x"+tt.v1 {
				t.Errorf("AppendV1(\"x\", %v, %v) = %q, want %q", tt.src, tt.dst, got, "x"+tt.v1)
			}
			if got := AppendV2([]byte("x"), tt.src, tt.dst); !bytes.Equal(got, cat([]byte("x"), tt.v2)) {
				t.Errorf("AppendV2(\"x\", %v, %v) = %q, want %q", tt.src, tt.dst, got, cat([]byte("x"), tt.v2))
			}
		})
	}
	if got, want := AppendV1Unknown(nil), "PROXY UNKNOWN\r\n"; string(got) != want {
		t.Errorf("AppendV1Unknown(nil) = %q, want %q", got, want)
	}
	if got, want := AppendV2Local(nil), v2(0x20, 0x00); !bytes.Equal(got, want) {
		t.Errorf("AppendV2Local(nil) = %q, want %q", got, want)
	}
}

// TestRoundTrip reads back what AppendV1 and AppendV2 write.
func TestRoundTrip(t *testing.T) {
	pairs := []struct {
		src, dst netip.AddrPort
		// wantSrc and wantDst are what Read gives back, if not src and dst.
		wantSrc, wantDst netip.AddrPort
	}{
		{src: ap("192.168.0.1:56324"), dst: ap("192.168.0.11:443")},
		{src: ap("0.0.0.0:0"), dst: ap("255.255.255.255:65535")},
		{src: ap("[2001:db8::1]:0"), dst: ap("[2001:db8::2]:65535")},
		{src: ap("[::]:1"), dst: ap("[::1]:2")},
		{src: netip.AddrPortFrom(netip.MustParseAddr(ffff6), 65535), dst: netip.AddrPortFrom(netip.MustParseAddr(ffff6), 65535)},
		{src: ap("[::ffff:1.2.3.4]:0"), dst: ap("[::ffff:255.255.255.255]:65535")},
		{src: ap("[::ffff:0.0.0.0]:1"), dst: ap("[::ffff:0.0.0.1]:2")},
		{src: ap("1.2.3.4:1000"), dst: ap("[2001:db8::2]:443"), wantSrc: ap("[::ffff:1.2.3.4]:1000")},
		{src: ap("[2001:db8::2]:443"), dst: ap("1.2.3.4:1000"), wantDst: ap("[::ffff:1.2.3.4]:1000")},
		{src: ap("[fe80::1%eth0]:1"), dst: ap("[fe80::2%eth0]:2"), wantSrc: ap("[fe80::1]:1"), wantDst: ap("[fe80::2]:2")},
	}
	buf := make([]byte, MaxHeaderLen)
	for _, p := range pairs {
		want := Header{Source: p.src, Dest: p.dst}
		if p.wantSrc.IsValid() {
			want.Source = p.wantSrc
		}
		if p.wantDst.IsValid() {
			want.Dest = p.wantDst
		}
		for v, appendHeader := range map[int]func([]byte, netip.AddrPort, netip.AddrPort) []byte{1: AppendV1, 2: AppendV2} {
			want.Version = v
			hdr := appendHeader(nil, p.src, p.dst)
			h, rest, err := Read(bytes.NewReader(hdr), buf)
			if err != nil || !headerEqual(h, want) || len(rest) != 0 {
				t.Errorf("Read(AppendV%d(%v, %v) = %q) = %+v, %q, %v, want %+v", v, p.src, p.dst, hdr, h, rest, err, want)
			}
		}
	}
	for v, hdr := range map[int][]byte{1: AppendV1Unknown(nil), 2: AppendV2Local(nil)} {
		want := Header{Version: v, Local: true}
		if h, rest, err := Read(bytes.NewReader(hdr), buf); err != nil || !headerEqual(h, want) || len(rest) != 0 {
			t.Errorf("Read(%q) = %+v, %q, %v, want %+v", hdr, h, rest, err, want)
		}
	}
}

// addrTests are address texts to compare parseIPv4 and parseIPv6 with
// netip.ParseAddr on.
var addrTests = []string{
	"", ".", ":", "::", ":::", "::1", "1::", "1:", ":1", "1::2", "1:::2", "1::2::3",
	"0.0.0.0", "1.2.3.4", "255.255.255.255", "256.0.0.0", "1.2.3", "1.2.3.4.5",
	"01.2.3.4", "1.2.3.04", "1.2.3.0", "0.0.0.00", "1..2.3", "1.2.3.", ".1.2.3", "1.2.3.4 ",
	"2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1", "2001:db8:0:0:0:0:0:0:1",
	"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
	"1:2:3:4:5:6::7:8", "12345::", "::12345", "0000:0000:0000:0000:0000:0000:0000:0000", "00000::",
	ffff6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffg", "g::",
	"::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"1::2:3:4:5:6:1.2.3.4", "::ffff:1.2.3", "::ffff:1.2.3.04", "::ffff:1.2.3.4.5", "1.2.3.4::",
	"::ffff:1.2.3.4:1", "a1.2.3.4", "::a1.2.3.4", "::1.2.3.4x",
	"fe80::1%eth0", "fe80::1%", "[::1]", "::1 ", " ::1", "1:2:3:4:5:6:7:8:9",
}

func TestParseIPv4(t *testing.T) {
	for _, s := range addrTests {
		checkIPv4(t, s)
	}
}

func TestParseIPv6(t *testing.T) {
	for _, s := range addrTests {
		checkIPv6(t, s)
	}
}

// checkIPv4 and checkIPv6 fail t if the parser and netip.ParseAddr
// disagree on s.
func checkIPv4(t *testing.T, s string) {
	t.Helper()
	a, err := netip.ParseAddr(s)
	want := err == nil && a.Is4()
	ip, ok := parseIPv4([]byte(s))
	if ok != want || (ok && netip.AddrFrom4(ip) != a) {
		t.Errorf("parseIPv4(%q) = %v, %v; netip.ParseAddr = %v, %v", s, netip.AddrFrom4(ip), ok, a, err)
	}
}

func checkIPv6(t *testing.T, s string) {
	t.Helper()
	a, err := netip.ParseAddr(s)
	want := err == nil && a.Is6() && a.Zone() == ""
	ip, ok := parseIPv6([]byte(s))
	if ok != want || (ok && netip.AddrFrom16(ip) != a) {
		t.Errorf("parseIPv6(%q) = %v, %v; netip.ParseAddr = %v, %v", s, netip.AddrFrom16(ip), ok, a, err)
	}
}

// FuzzParseAddr checks parseIPv4 and parseIPv6 against netip.ParseAddr.
func FuzzParseAddr(f *testing.F) {
	for _, s := range addrTests {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkIPv4(t, s)
		checkIPv6(t, s)
	})
}

// FuzzRead checks that Read never panics; that it returns a header or an
// *Error with a known reason; that how the bytes arrive makes no
// difference; that rest is what follows the header; and that a header it
// returns, written again, reads back the same.
func FuzzRead(f *testing.F) {
	for _, tt := range validTests {
		f.Add(tt.in)
	}
	for _, tt := range errorTests {
		f.Add(tt.in)
	}
	f.Add(AppendV1(nil, ap("[::ffff:1.2.3.4]:1"), ap("[2001:db8::1]:65535")))
	f.Add(AppendV2(nil, ap("[::ffff:1.2.3.4]:1"), ap("[2001:db8::1]:65535")))
	f.Add(AppendV2Local(nil))

	buf, buf2 := make([]byte, MaxHeaderLen), make([]byte, MaxHeaderLen)
	f.Fuzz(func(t *testing.T, in []byte) {
		q := quoteShort(in)
		r := bytes.NewReader(in)
		h, rest, err := Read(r, buf)
		read := len(in) - r.Len() // bytes Read took from r
		h1, rest1, err1 := Read(&oneByteReader{in}, buf2)
		if err != nil {
			pe, ok := err.(*Error)
			if !ok || !knownReason(pe.Reason) || pe.Detail == "" {
				t.Fatalf("Read(%s) = %v (%T), want an *Error with a known reason and a detail", q, err, err)
			}
			if !bytes.Equal(rest, in[:read]) {
				t.Fatalf("Read(%s): rest %q, want the %d bytes read", q, rest, read)
			}
			var pe1 *Error
			if !errors.As(err1, &pe1) || pe1.Reason != pe.Reason {
				t.Fatalf("Read(%s) = %v, but a byte at a time %+v, %v", q, err, h1, err1)
			}
			return
		}
		if !headerEqual(h1, h) || err1 != nil || len(rest1) != 0 {
			t.Fatalf("Read(%s) = %+v, but a byte at a time %+v, %q, %v", q, h, h1, rest1, err1)
		}
		size := read - len(rest) // the header's
		if !bytes.Equal(rest, in[size:read]) {
			t.Fatalf("Read(%s): rest %q, want the %d bytes read after the header", q, rest, read-size)
		}
		switch {
		case h.Version == 1:
			if size > MaxV1Len || !bytes.HasSuffix(in[:size], []byte("\r\n")) || bytes.ContainsAny(in[:size-2], "\r\n") || h.TLVs != nil {
				t.Fatalf("Read(%s) = v1 header %+v of %d bytes", q, h, size)
			}
		case h.Version == 2:
			if size > MaxHeaderLen || size != v2FixedLen+int(binary.BigEndian.Uint16(in[v2Len:])) || checkTLVs(h.TLVs) != nil {
				t.Fatalf("Read(%s) = v2 header %+v of %d bytes", q, h, size)
			}
		default:
			t.Fatalf("Read(%s) = header %+v of version %d", q, h, h.Version)
		}
		if h.Local {
			if h.Source.IsValid() || h.Dest.IsValid() {
				t.Fatalf("Read(%s) = Local header %+v with addresses", q, h)
			}
		} else if !h.Source.IsValid() || !h.Dest.IsValid() || h.Source.Addr().Is4() != h.Dest.Addr().Is4() || h.Source.Addr().Zone() != "" {
			t.Fatalf("Read(%s) = header %+v, want valid addresses of one family", q, h)
		}

		// Written again, it reads back the same.
		var again []byte
		switch {
		case h.Version == 1 && h.Local:
			again = AppendV1Unknown(nil)
		case h.Version == 1:
			again = AppendV1(nil, h.Source, h.Dest)
		case h.Local:
			again = AppendV2Local(nil)
		default:
			again = AppendV2(nil, h.Source, h.Dest)
		}
		h2, rest2, err2 := Read(bytes.NewReader(again), buf2)
		if err2 != nil || len(rest2) != 0 || h2.Version != h.Version || h2.Local != h.Local || h2.Source != h.Source || h2.Dest != h.Dest {
			t.Fatalf("Read(%s) = %+v; written again as %q it reads %+v, %q, %v", q, h, again, h2, rest2, err2)
		}
	})
}

func BenchmarkReadV2(b *testing.B) {
	for _, bb := range []struct {
		name string
		in   []byte
	}{
		{"TCP4", AppendV2(nil, ap("192.168.0.1:56324"), ap("192.168.0.11:443"))},
		{"TCP6+TLVs", v2(0x21, 0x21, addrs6("2001:db8::1", "2001:db8::2", 56324, 443), tlv(tlvALPN, "h2"), tlv(tlvAuthority, "example.com"))},
		{"LOCAL", AppendV2Local(nil)},
	} {
		b.Run(bb.name, func(b *testing.B) { benchmarkRead(b, bb.in) })
	}
}

func BenchmarkReadV1(b *testing.B) {
	for _, bb := range []struct {
		name string
		in   []byte
	}{
		{"TCP4", AppendV1(nil, ap("192.168.0.1:56324"), ap("192.168.0.11:443"))},
		{"TCP6", AppendV1(nil, ap("[2001:db8::1]:56324"), ap("[2001:db8::2]:443"))},
	} {
		b.Run(bb.name, func(b *testing.B) { benchmarkRead(b, bb.in) })
	}
}

func benchmarkRead(b *testing.B, in []byte) {
	in = append(in, "GET / HTTP/1.1\r\n\r\n"...)
	buf := make([]byte, MaxHeaderLen)
	r := bytes.NewReader(in)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		if _, _, err := Read(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendV2(b *testing.B) {
	benchmarkAppend(b, AppendV2)
}

func BenchmarkAppendV1(b *testing.B) {
	benchmarkAppend(b, AppendV1)
}

func benchmarkAppend(b *testing.B, appendHeader func([]byte, netip.AddrPort, netip.AddrPort) []byte) {
	for _, bb := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"IPv4", ap("192.168.0.1:56324"), ap("192.168.0.11:443")},
		{"IPv6", ap("[2001:db8::1]:56324"), ap("[2001:db8::2]:443")},
	} {
		b.Run(bb.name, func(b *testing.B) {
			buf := make([]byte, 0, MaxV1Len)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendHeader(buf[:0], bb.src, bb.dst)
			}
		})
	}
}
