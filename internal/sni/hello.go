package sni

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Errors returned by [ReadServerName], to be tested with errors.Is. They come
// wrapped with a detail; the bytes read so far are returned with them.
var (
	// ErrNotTLS means the first bytes are not a TLS handshake record: the
	// first byte is not 0x16, or the record version's major byte is not
	// 0x03 (plain HTTP, SSH, an SSLv2-style hello…). It is decided from the
	// first byte and the record header alone, without waiting for more.
	ErrNotTLS = errors.New("sni: not a TLS handshake")

	// ErrTooLarge means no complete ClientHello fits in the byte limit given
	// to ReadServerName. When the record or handshake header already
	// declares more than the limit, it is returned without reading on.
	ErrTooLarge = errors.New("sni: ClientHello larger than the limit")

	// ErrMalformed means a TLS handshake record that crypto/tls could not
	// parse as a ClientHello, or whose server name is not a valid host name.
	ErrMalformed = errors.New("sni: malformed ClientHello")
)

// ReadServerName reads a TLS ClientHello from r (the client's side of a fresh
// connection, with a read deadline already set by the caller) and returns the
// SNI server name (lower-cased; "" if the hello has none) and every byte it
// read, which the caller must send to the backend before anything else. It
// reads at most max bytes in all (a ClientHello normally fits in one 16 KiB
// record, so 16<<10+5 is a sensible bound; a non-positive max reads nothing
// and returns ErrTooLarge). It never writes, to r or to anything else, and
// never sets deadlines.
//
// read holds the exact bytes consumed from r, on error too: a caller that
// routes an unrecognised connection to a default pool must forward them.
// It may extend past the ClientHello when the client sent more and a single
// Read returned it (TLS 1.3 early data, for instance); those bytes belong to
// the stream too. With a reader that returns one byte per Read, read ends
// exactly where the ClientHello ends.
//
// The ClientHello may arrive in any number of reads and be split over several
// TLS records; the limit applies to the total. Once it is complete,
// ReadServerName returns without reading further. The hello is parsed by
// crypto/tls: a tls.Server runs over a read-only, recording view of r, and
// its GetConfigForClient callback captures the server name and aborts the
// handshake, so the alert crypto/tls then sends goes nowhere. Besides the
// parse, ReadServerName checks only the record header and the handshake
// message's type and length, to fail fast on what they already decide.
//
// The name is the one crypto/tls reports, with ASCII letters lower-cased. It
// must be a valid host name: dot-separated labels of 1 to 63 letters, digits,
// '-' or '_', at most 253 bytes; anything else (spaces, non-ASCII, an IP
// literal with colons) is ErrMalformed. With TLS 1.3 ECH it is the outer
// (public) name; see the package documentation.
//
// Errors: ErrNotTLS, ErrTooLarge and ErrMalformed (wrapped, see their docs),
// or a read error from r wrapped so that errors.Is still matches it: io.EOF
// when the client closed before a complete ClientHello,
// os.ErrDeadlineExceeded on timeout. A reader that returns no bytes and no
// error 100 times in a row fails with io.ErrNoProgress.
//
// ReadServerName is safe for concurrent use on different readers.
func ReadServerName(r io.Reader, max int) (serverName string, read []byte, err error) {
	if max <= 0 {
		return "", nil, fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, max)
	}
	c := &helloConn{r: r, max: max, rec: make([]byte, 0, min(max, initialBuffer))}
	herr := tls.Server(c, abortConfig).Handshake()
	switch {
	case c.gotHello:
		name := lowerASCII(c.serverName)
		if name != "" && !validHostname(name) {
			return "", c.rec, fmt.Errorf("%w: server name %s is not a valid host name", ErrMalformed, quoteShort(c.serverName))
		}
		return name, c.rec, nil
	case c.fail != nil:
		return "", c.rec, c.fail
	case c.readErrSeen:
		return "", c.rec, fmt.Errorf("sni: reading ClientHello (%d bytes read): %w", len(c.rec), c.readErr)
	default:
		return "", c.rec, fmt.Errorf("%w: %w", ErrMalformed, herr)
	}
}

const (
	// initialBuffer is the starting capacity of the recording: enough for
	// a typical ClientHello, post-quantum key share included.
	initialBuffer = 2048

	// maxEmptyReads is how many (0, nil) reads in a row are tolerated.
	maxEmptyReads = 100

	recordTypeHandshake  = 0x16
	handshakeClientHello = 0x01
	recordHeaderLen      = 5
	handshakeHeaderLen   = 4
	maxPlaintext         = 16384 // largest TLS record payload, RFC 8446 5.1
)

// abortConfig is shared by every ReadServerName call: per-call state lives in
// the helloConn that crypto/tls hands back as ClientHelloInfo.Conn.
var abortConfig = &tls.Config{
	GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, ok := hello.Conn.(*helloConn)
		if !ok {
			return nil, errors.New("sni: unexpected connection type")
		}
		c.gotHello = true
		c.serverName = hello.ServerName
		return nil, errHelloRead
	},
}

// errHelloRead aborts the handshake once the ClientHello has been captured.
var errHelloRead = errors.New("sni: ClientHello read")

// errNoWrite is what crypto/tls gets when it tries to send an alert.
var errNoWrite = errors.New("sni: writes are discarded")

// helloConn is the read-only, recording, bounded net.Conn that tls.Server
// runs over. It is used by one goroutine.
type helloConn struct {
	r   io.Reader
	max int
	rec []byte // every byte read from r, in order; len(rec) <= max

	// readErr is the error r returned. It is handed to crypto/tls only
	// when it asks for more bytes, which sets readErrSeen: an error that
	// came with the bytes completing the ClientHello does not count.
	readErr     error
	readErrSeen bool

	fail error // ErrNotTLS, ErrTooLarge or ErrMalformed, decided here

	gotHello   bool
	serverName string
}

func (c *helloConn) Read(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	if c.readErr != nil {
		c.readErrSeen = true
		return 0, c.readErr
	}
	room := c.max - len(c.rec)
	if room <= 0 {
		c.fail = fmt.Errorf("%w: no complete ClientHello in %d bytes", ErrTooLarge, len(c.rec))
		return 0, c.fail
	}
	if len(p) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	for i := 1; n == 0 && err == nil; i++ {
		if i == maxEmptyReads {
			err = io.ErrNoProgress
			break
		}
		n, err = c.r.Read(p)
	}
	c.rec = append(c.rec, p[:n]...)
	c.readErr = err
	if c.fail = sniff(c.rec, c.max); c.fail != nil {
		return n, c.fail
	}
	if n == 0 {
		c.readErrSeen = true
		return 0, err
	}
	return n, nil
}

// sniff fails fast on what the first bytes already decide: whether this is
// a TLS handshake record at all, whether the first record is plausible, and
// whether the ClientHello it declares can fit in max bytes. b is a prefix of
// the stream, of any length; everything else is left to crypto/tls.
func sniff(b []byte, max int) error {
	if len(b) >= 1 && b[0] != recordTypeHandshake {
		return fmt.Errorf("%w: first byte is 0x%02x, want 0x16", ErrNotTLS, b[0])
	}
	if len(b) >= 2 && b[1] != 0x03 {
		return fmt.Errorf("%w: record version major byte is 0x%02x, want 0x03", ErrNotTLS, b[1])
	}
	if len(b) < recordHeaderLen {
		return nil
	}
	recLen := int(b[3])<<8 | int(b[4])
	switch {
	case recLen == 0:
		return fmt.Errorf("%w: empty first record", ErrMalformed)
	case recLen > maxPlaintext:
		return fmt.Errorf("%w: first record of %d bytes, more than %d", ErrMalformed, recLen, maxPlaintext)
	case recordHeaderLen+recLen > max:
		return fmt.Errorf("%w: first record of %d bytes, limit %d", ErrTooLarge, recordHeaderLen+recLen, max)
	}
	if len(b) > recordHeaderLen && b[recordHeaderLen] != handshakeClientHello {
		return fmt.Errorf("%w: handshake message type %d, want 1", ErrMalformed, b[recordHeaderLen])
	}
	if len(b) < recordHeaderLen+handshakeHeaderLen || recLen < handshakeHeaderLen {
		return nil // the handshake header is not there yet, or spans records
	}
	msgLen := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
	if need := recordHeaderLen + handshakeHeaderLen + msgLen; need > max {
		return fmt.Errorf("%w: ClientHello needs at least %d bytes, limit %d", ErrTooLarge, need, max)
	}
	return nil
}

func (c *helloConn) Write([]byte) (int, error)        { return 0, errNoWrite }
func (c *helloConn) Close() error                     { return nil }
func (c *helloConn) LocalAddr() net.Addr              { return helloAddr{} }
func (c *helloConn) RemoteAddr() net.Addr             { return helloAddr{} }
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }

// helloAddr stands in for addresses crypto/tls has no use for here.
type helloAddr struct{}

func (helloAddr) Network() string { return "sni" }
func (helloAddr) String() string  { return "sni" }

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const limit = 80
	if len(s) > limit {
		return fmt.Sprintf("%q… (%d bytes)", s[:limit], len(s))
	}
	return fmt.Sprintf("%q", s)
}
