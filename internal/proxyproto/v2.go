package proxyproto

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// sigV2 starts every v2 header.
const sigV2 = "\r\n\r\n\x00\r\nQUIT\n"

// The v2 fixed part: signature, version and command, family and transport,
// length.
const (
	v2VerCmd   = len(sigV2)
	v2Fam      = v2VerCmd + 1
	v2Len      = v2Fam + 1
	v2FixedLen = v2Len + 2 // 16
)

// v2 version and commands, the high and low nibbles of the 13th byte.
const (
	v2Version   = 0x2
	cmdLocal    = 0x0
	cmdProxy    = 0x1
	verCmdProxy = v2Version<<4 | cmdProxy
	verCmdLocal = v2Version<<4 | cmdLocal
)

// v2 family (high nibble) and transport (low nibble) pairs.
const (
	famUnspec     = 0x00
	famTCP4       = 0x11
	famUDP4       = 0x12
	famTCP6       = 0x21
	famUDP6       = 0x22
	famUnixStream = 0x31
	famUnixDgram  = 0x32
)

// Address block sizes: two addresses and, for IP, two ports.
const (
	addrLen4    = 2*4 + 2*2
	addrLen6    = 2*16 + 2*2
	addrLenUnix = 2 * 108
)

// parseV2 is parse for b starting with CR.
func parseV2(b []byte) (Header, int, *Error) {
	if !matchPrefix(b, sigV2) {
		return Header{}, 0, notProxy(b)
	}
	if len(b) <= v2VerCmd {
		return Header{}, 0, nil
	}
	verCmd := b[v2VerCmd]
	if verCmd>>4 != v2Version {
		return Header{}, 0, &Error{Reason: ReasonVersion, Detail: fmt.Sprintf("v2: version %d, want 2", verCmd>>4)}
	}
	cmd := verCmd & 0xf
	if cmd != cmdLocal && cmd != cmdProxy {
		return Header{}, 0, &Error{Reason: ReasonCommand, Detail: fmt.Sprintf("v2: command %d, want 0 (LOCAL) or 1 (PROXY)", cmd)}
	}
	if len(b) <= v2Fam {
		return Header{}, 0, nil
	}
	fam := b[v2Fam]
	addrLen := 0 // LOCAL ignores the family
	if cmd == cmdProxy {
		var err *Error
		if addrLen, err = familyAddrLen(fam); err != nil {
			return Header{}, 0, err
		}
	}
	if len(b) < v2FixedLen {
		return Header{}, 0, nil
	}
	n := int(binary.BigEndian.Uint16(b[v2Len:]))
	if n > maxV2Body {
		return Header{}, 0, &Error{Reason: ReasonTooLong, Detail: fmt.Sprintf("v2: length %d, at most %d accepted", n, maxV2Body)}
	}
	if n < addrLen {
		return Header{}, 0, &Error{Reason: ReasonFamily, Detail: fmt.Sprintf("v2: length %d, short of the %d address bytes of family 0x%02x", n, addrLen, fam)}
	}
	size := v2FixedLen + n
	if len(b) < size {
		return Header{}, 0, nil
	}
	h := Header{Version: 2}
	if cmd == cmdLocal {
		h.Local = true
		return h, size, nil
	}
	a := b[v2FixedLen:size]
	switch fam {
	case famTCP4:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))
	case famTCP6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:]))
	default: // AF_UNSPEC, AF_UNIX: no address to use
		h.Local = true
	}
	if tlvs := a[addrLen:]; len(tlvs) > 0 {
		if err := checkTLVs(tlvs); err != nil {
			return Header{}, 0, err
		}
		h.TLVs = tlvs[:len(tlvs):len(tlvs)]
	}
	return h, size, nil
}

// familyAddrLen returns the size of the address block of a PROXY header of
// family and transport fam, or an error if tcplb does not take it.
func familyAddrLen(fam byte) (int, *Error) {
	switch fam {
	case famUnspec:
		return 0, nil
	case famTCP4:
		return addrLen4, nil
	case famTCP6:
		return addrLen6, nil
	case famUnixStream:
		return addrLenUnix, nil
	case famUDP4, famUDP6, famUnixDgram:
		return 0, &Error{Reason: ReasonFamily, Detail: fmt.Sprintf("v2: family 0x%02x is datagrams, want a stream", fam)}
	}
	return 0, &Error{Reason: ReasonFamily, Detail: fmt.Sprintf("v2: unknown family and transport 0x%02x", fam)}
}

// checkTLVs checks that b is a sequence of whole TLVs.
func checkTLVs(b []byte) *Error {
	for off := 0; off < len(b); {
		if len(b)-off < 3 {
			return &Error{Reason: ReasonTLV, Detail: fmt.Sprintf("v2: %d bytes left after the TLVs, too few for one", len(b)-off)}
		}
		n := int(binary.BigEndian.Uint16(b[off+1:]))
		if len(b)-off-3 < n {
			return &Error{Reason: ReasonTLV, Detail: fmt.Sprintf("v2: TLV of type 0x%02x and length %d runs %d bytes past the header", b[off], n, n-(len(b)-off-3))}
		}
		off += 3 + n
	}
	return nil
}
