package proxyproto_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tcplb/tcplb/internal/proxyproto"
)

func ExampleRead() {
	// What a trusted upstream sends: a header, then the client's bytes.
	in := proxyproto.AppendV1(nil,
		netip.MustParseAddrPort("203.0.113.7:51234"),
		netip.MustParseAddrPort("192.0.2.1:443"))
	in = append(in, "GET / HTTP/1.1\r\n"...)

	buf := make([]byte, proxyproto.MaxHeaderLen)
	h, rest, err := proxyproto.Read(bytes.NewReader(in), buf)
	fmt.Println(h.Version, h.Local, h.Source, h.Dest, err)
	fmt.Printf("%q\n", rest)

	// A client that sends no header: rest holds what was read.
	_, rest, err = proxyproto.Read(bytes.NewReader([]byte("GET / HTTP/1.1\r\n")), buf)
	var pe *proxyproto.Error
	if errors.As(err, &pe) {
		fmt.Printf("%s %q\n", pe.Reason, rest)
	}
	// Output:
	// 1 false 203.0.113.7:51234 192.0.2.1:443 <nil>
	// "GET / HTTP/1.1\r\n"
	// not_proxy "GET / HTTP/1.1\r\n"
}

func ExampleAppendV2() {
	hdr := proxyproto.AppendV2(nil,
		netip.MustParseAddrPort("203.0.113.7:51234"),
		netip.MustParseAddrPort("192.0.2.1:443"))
	fmt.Printf("% x\n", hdr)
	// Output:
	// 0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 21 11 00 0c cb 00 71 07 c0 00 02 01 c8 22 01 bb
}
