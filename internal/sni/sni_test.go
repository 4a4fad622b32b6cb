package sni

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// limit is the bound a proxy would use: one full TLS record and its header.
const limit = 16<<10 + 5

// testCert is a self-signed ECDSA certificate for example.com, made once.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.com"},
		DNSNames:     []string{"example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

// clientConfig is a crypto/tls client configuration sending serverName. No
// server in these tests has a certificate the client could verify.
func clientConfig(serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, InsecureSkipVerify: true}
}

// captureConn is the client's side of a handshake that never gets an answer:
// it keeps what the client writes, and reads EOF.
type captureConn struct {
	net.Conn // nil: crypto/tls's client calls only the methods below
	buf      bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.buf.Write(p) }
func (c *captureConn) Read([]byte) (int, error)    { return 0, io.EOF }
func (c *captureConn) Close() error                { return nil }

// captureHello returns the ClientHello a real crypto/tls client sends with cfg.
func captureHello(tb testing.TB, cfg *tls.Config) []byte {
	tb.Helper()
	c := &captureConn{}
	if err := tls.Client(c, cfg).Handshake(); err == nil {
		tb.Fatal("client handshake succeeded with no server")
	}
	if c.buf.Len() == 0 {
		tb.Fatal("client wrote nothing")
	}
	return c.buf.Bytes()
}

// fragment re-frames the TLS records in stream so that no record carries more
// than size bytes of payload. The handshake messages are unchanged, so a TLS
// server accepts the result as it would the original. It panics on a stream
// that is not whole records.
func fragment(stream []byte, size int) []byte {
	var out []byte
	for len(stream) > 0 {
		n := int(stream[3])<<8 | int(stream[4])
		hdr, payload := stream[:3], stream[5:5+n]
		stream = stream[5+n:]
		for len(payload) > 0 {
			k := min(size, len(payload))
			out = append(out, hdr...)
			out = append(out, byte(k>>8), byte(k))
			out = append(out, payload[:k]...)
			payload = payload[k:]
		}
	}
	return out
}

// tcpPair returns the two ends of a loopback TCP connection, with a deadline
// that fails a stuck test instead of hanging it; both are closed at cleanup.
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
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	return client, server
}

// clientConn is a client's connection that keeps what went on the wire. With
// fragSize > 0 it re-frames its first write (the ClientHello) into records of
// fragSize payload bytes and sends them a few bytes per write, like a slow
// client.
type clientConn struct {
	net.Conn
	fragSize int

	mu    sync.Mutex
	sent  []byte
	first bool
}

func (c *clientConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := !c.first
	c.first = true
	out := p
	if first && c.fragSize > 0 {
		out = fragment(p, c.fragSize)
	}
	c.sent = append(c.sent, out...)
	c.mu.Unlock()
	if !first || c.fragSize == 0 {
		return c.Conn.Write(p)
	}
	for len(out) > 0 {
		k := min(7, len(out))
		if _, err := c.Conn.Write(out[:k]); err != nil {
			return 0, err
		}
		out = out[k:]
	}
	return len(p), nil
}

func (c *clientConn) wire() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.sent)
}

// pingClient completes a TLS handshake as a client, sends "ping" and expects
// "pong".
func pingClient(conn net.Conn, cfg *tls.Config) error {
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("client handshake: %w", err)
	}
	if _, err := tc.Write([]byte("ping")); err != nil {
		return fmt.Errorf("client write: %w", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(tc, buf); err != nil {
		return fmt.Errorf("client read: %w", err)
	}
	if string(buf) != "pong" {
		return fmt.Errorf("client read %q, want \"pong\"", buf)
	}
	return nil
}

// replayConn reads from r: the recorded bytes, then the rest of Conn.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestReadServerNameEndToEnd has a real TLS client connect over TCP, reads its
// server name with ReadServerName, then hands the recorded bytes followed by
// the rest of the connection to a real TLS server: the handshake completing
// and data flowing prove that ReadServerName consumed nothing it did not
// return, and wrote nothing to the client.
func TestReadServerNameEndToEnd(t *testing.T) {
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	tls12 := clientConfig("example.com")
	tls12.MaxVersion = tls.VersionTLS12
	tests := []struct {
		name     string
		cfg      *tls.Config
		fragSize int  // re-frame the ClientHello into records this small
		oneByte  bool // read the server side one byte at a time
		want     string
	}{
		{name: "server name", cfg: clientConfig("example.com"), want: "example.com"},
		{name: "no server name", cfg: clientConfig(""), want: ""},
		{name: "IP address", cfg: clientConfig("127.0.0.1"), want: ""},
		{name: "upper case", cfg: clientConfig("WWW.Example.COM"), want: "www.example.com"},
		{name: "trailing dot", cfg: clientConfig("example.com."), want: "example.com"},
		{name: "TLS 1.2", cfg: tls12, want: "example.com"},
		{name: "one-byte reads", cfg: clientConfig("a.example.com"), oneByte: true, want: "a.example.com"},
		{name: "fragmented slow client", cfg: clientConfig("b.example.com"), fragSize: 50, want: "b.example.com"},
		{name: "one-byte records, one-byte reads", cfg: clientConfig("c.example.com"), fragSize: 1, oneByte: true, want: "c.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := tcpPair(t)
			cc := &clientConn{Conn: client, fragSize: tt.fragSize}
			var wg sync.WaitGroup
			var clientErr error
			wg.Go(func() { clientErr = pingClient(cc, tt.cfg) })
			t.Cleanup(func() { client.Close(); wg.Wait() })

			var r io.Reader = server
			if tt.oneByte {
				r = iotest.OneByteReader(server)
			}
			name, read, err := ReadServerName(r, limit)
			if err != nil || name != tt.want {
				t.Fatalf("ReadServerName() = %q, %v; want %q, nil", name, err, tt.want)
			}
			// The client is now waiting for the server's reply: all it has
			// sent is its ClientHello, and ReadServerName read all of it.
			if sent := cc.wire(); !bytes.Equal(read, sent) {
				t.Fatalf("ReadServerName() read %d bytes, want the %d the client sent", len(read), len(sent))
			}

			srv := tls.Server(&replayConn{Conn: server, r: io.MultiReader(bytes.NewReader(read), server)},
				&tls.Config{Certificates: []tls.Certificate{cert}})
			if err := srv.Handshake(); err != nil {
				t.Fatalf("server handshake after ReadServerName: %v", err)
			}
			if got := srv.ConnectionState().ServerName; !strings.EqualFold(got, tt.want) {
				t.Errorf("tls.Server saw server name %q, ReadServerName %q", got, tt.want)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("server read %q, %v; want \"ping\"", buf, err)
			}
			if _, err := srv.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if clientErr != nil {
				t.Fatal(clientErr)
			}
		})
	}
}

// readStalled runs ReadServerName on one end of a net.Pipe whose other end
// writes input and then neither writes nor closes, so that a ReadServerName
// that waits for more fails the test with a timeout. It also fails the test if
// anything reaches the client.
func readStalled(t *testing.T, input []byte, max int) (string, []byte, time.Duration, error) {
	t.Helper()
	client, server := net.Pipe()
	server.SetDeadline(time.Now().Add(5 * time.Second))
	var wg sync.WaitGroup
	wg.Go(func() { stalledClient(t, client, input) })
	start := time.Now()
	name, read, err := ReadServerName(server, max)
	elapsed := time.Since(start)
	server.Close()
	wg.Wait()
	return name, read, elapsed, err
}

// stalledClient writes input, then waits for the server to close, failing t
// if the server writes anything.
func stalledClient(t *testing.T, conn net.Conn, input []byte) {
	defer conn.Close()
	conn.Write(input) // fails once the server has read enough and closed
	var b [64]byte
	if n, _ := conn.Read(b[:]); n > 0 {
		t.Errorf("ReadServerName wrote %q to the client", b[:n])
	}
}

// TestReadServerNameFailsFast checks inputs that ReadServerName must reject
// from what it has, without waiting for bytes the client will never send.
func TestReadServerNameFailsFast(t *testing.T) {
	hello := captureHello(t, clientConfig("example.com"))
	tests := []struct {
		name  string
		input []byte
		max   int
		want  error
	}{
		{"HTTP request", []byte("GET / HTTP/1.1\r\n"), limit, ErrNotTLS},
		{"one byte", []byte("G"), limit, ErrNotTLS},
		{"handshake byte then text", []byte("\x16GET"), limit, ErrNotTLS},
		{"SSLv2 hello", []byte("\x80\x2e\x01\x03\x01"), limit, ErrNotTLS},
		{"alert record", []byte("\x15\x03\x01\x00\x02\x02\x28"), limit, ErrNotTLS},
		{"empty record", []byte("\x16\x03\x01\x00\x00"), limit, ErrMalformed},
		{"record over 16 KiB", []byte("\x16\x03\x01\x40\x01"), 1 << 20, ErrMalformed},
		{"ServerHello", []byte("\x16\x03\x03\x00\x30\x02\x00\x00\x2c"), limit, ErrMalformed},
		{"garbage after record header", append([]byte("\x16\x03\x01\x00\x20"), bytes.Repeat([]byte{0xee}, 32)...), limit, ErrMalformed},
		{"garbage ClientHello body", []byte("\x16\x03\x01\x00\x08\x01\x00\x00\x04\xff\xff\xff\xff"), limit, ErrMalformed},
		{"record larger than max", hello, 100, ErrTooLarge},
		{"hello larger than max", hello, len(hello) - 1, ErrTooLarge},
		{"declared hello larger than max", []byte("\x16\x03\x01\x00\x04\x01\x00\x40\x00"), 1000, ErrTooLarge},
		{"declared record larger than max", []byte("\x16\x03\x01\x03\xe8\x01\x00\x00\x10"), 500, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, read, elapsed, err := readStalled(t, tt.input, tt.max)
			if !errors.Is(err, tt.want) || name != "" {
				t.Fatalf("ReadServerName(%q) = %q, %v; want %v", tt.input, name, err, tt.want)
			}
			if elapsed > time.Second {
				t.Errorf("ReadServerName took %v to fail", elapsed)
			}
			if len(read) == 0 || len(read) > tt.max || !bytes.HasPrefix(tt.input, read) {
				t.Errorf("ReadServerName read %q, want a non-empty prefix of the input of at most %d bytes", read, tt.max)
			}
			if len(tt.input) <= tt.max && !bytes.Equal(read, tt.input) {
				// net.Pipe hands over each write whole, in one Read.
				t.Errorf("ReadServerName read %q, want all of %q", read, tt.input)
			}
		})
	}
}

func TestReadServerNameTruncated(t *testing.T) {
	hello := captureHello(t, clientConfig("example.com"))
	for _, n := range []int{0, 1, 4, 5, 9, len(hello) / 2, len(hello) - 1} {
		input := hello[:n]
		name, read, err := ReadServerName(bytes.NewReader(input), limit)
		if !errors.Is(err, io.EOF) || name != "" {
			t.Errorf("ReadServerName(hello[:%d]) = %q, %v; want a wrapped io.EOF", n, name, err)
		}
		if errors.Is(err, ErrNotTLS) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
			t.Errorf("ReadServerName(hello[:%d]) = %v, want a read error only", n, err)
		}
		if !bytes.Equal(read, input) {
			t.Errorf("ReadServerName(hello[:%d]) read %d bytes, want %d", n, len(read), n)
		}
	}
}

func TestReadServerNameLimit(t *testing.T) {
	hello := captureHello(t, clientConfig("example.com"))
	frag := fragment(hello, 100)
	tests := []struct {
		name  string
		input []byte
		max   int
		want  error
	}{
		{"hello exactly max", hello, len(hello), nil},
		{"hello one over max", hello, len(hello) - 1, ErrTooLarge},
		{"fragmented exactly max", frag, len(frag), nil},
		{"fragmented one over max", frag, len(frag) - 1, ErrTooLarge},
		{"fragmented, max inside first record", frag, 50, ErrTooLarge},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(append(bytes.Clone(tt.input), "trailing"...))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			name, read, err := ReadServerName(r, tt.max)
			if !errors.Is(err, tt.want) || (err == nil) != (name == "example.com") {
				t.Errorf("%s, one-byte reads %v: ReadServerName() = %q, %v; want %v", tt.name, oneByte, name, err, tt.want)
			}
			if len(read) > tt.max || !bytes.HasPrefix(tt.input, read) {
				t.Errorf("%s, one-byte reads %v: ReadServerName read %d bytes, want a prefix of the input of at most %d", tt.name, oneByte, len(read), tt.max)
			}
			if err == nil && !bytes.Equal(read, tt.input) {
				t.Errorf("%s, one-byte reads %v: ReadServerName read %d bytes, want exactly the %d of the hello", tt.name, oneByte, len(read), len(tt.input))
			}
		}
	}

	for _, max := range []int{0, -1} {
		name, read, err := ReadServerName(iotest.ErrReader(errors.New("read called")), max)
		if !errors.Is(err, ErrTooLarge) || name != "" || read != nil {
			t.Errorf("ReadServerName(r, %d) = %q, %q, %v; want no read and ErrTooLarge", max, name, read, err)
		}
	}
}

// TestReadServerNameReads covers the ways a reader can hand over a valid hello.
func TestReadServerNameReads(t *testing.T) {
	hello := captureHello(t, clientConfig("example.com"))
	frag := fragment(hello, 37)
	tests := []struct {
		name     string
		r        io.Reader
		wantRead []byte
	}{
		{"one read", bytes.NewReader(hello), hello},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(hello)), hello},
		// An error that comes with the last bytes of the hello does not count.
		{"data with a timeout", &dataErrReader{hello, os.ErrDeadlineExceeded}, hello},
		{"one-byte reads", iotest.OneByteReader(bytes.NewReader(hello)), hello},
		{"half reads", iotest.HalfReader(bytes.NewReader(hello)), hello},
		{"fragmented", bytes.NewReader(frag), frag},
		{"fragmented, one-byte reads", iotest.OneByteReader(bytes.NewReader(frag)), frag},
		// Reading one byte at a time, nothing past the hello is read.
		{"one-byte reads, more after", iotest.OneByteReader(io.MultiReader(bytes.NewReader(hello), strings.NewReader("early data"))), hello},
	}
	for _, tt := range tests {
		name, read, err := ReadServerName(tt.r, limit)
		if err != nil || name != "example.com" {
			t.Errorf("%s: ReadServerName() = %q, %v; want \"example.com\", nil", tt.name, name, err)
		}
		if !bytes.Equal(read, tt.wantRead) {
			t.Errorf("%s: ReadServerName read %d bytes, want %d", tt.name, len(read), len(tt.wantRead))
		}
	}

	// Bytes after the hello that arrive in the same read are returned too.
	input := append(bytes.Clone(hello), "early data"...)
	if _, read, err := ReadServerName(bytes.NewReader(input), limit); err != nil || !bytes.Equal(read, input) {
		t.Errorf("ReadServerName(hello + more) read %d bytes, %v; want all %d", len(read), err, len(input))
	}
}

// dataErrReader returns err along with the last of its data, and then alone.
type dataErrReader struct {
	data []byte
	err  error
}

func (r *dataErrReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	if len(r.data) > 0 {
		return n, nil
	}
	return n, r.err
}

// stuckReader returns no bytes and no error, forever.
type stuckReader struct{ calls int }

func (r *stuckReader) Read([]byte) (int, error) { r.calls++; return 0, nil }

func TestReadServerNameNoProgress(t *testing.T) {
	r := &stuckReader{}
	if _, _, err := ReadServerName(r, limit); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("ReadServerName(stuck reader) = %v, want io.ErrNoProgress", err)
	}
	if r.calls > 1000 {
		t.Errorf("ReadServerName called Read %d times", r.calls)
	}
}

// TestReadServerNameInvalidName has a real client send server names that are
// not host names; crypto/tls parses them, ReadServerName rejects them.
func TestReadServerNameInvalidName(t *testing.T) {
	for _, sni := range []string{
		"bad name",
		"\u212a.example.com", // Kelvin sign: strings.ToLower would make it "k"
		"caf\u00e9.example.com",
		strings.Repeat("a", 64) + ".example.com",
		strings.Repeat("a.", 127) + "aa", // 256 bytes
		"a..example.com",
		"[::1]x",
	} {
		hello := captureHello(t, clientConfig(sni))
		name, read, err := ReadServerName(bytes.NewReader(hello), limit)
		if !errors.Is(err, ErrMalformed) || name != "" {
			t.Errorf("ReadServerName(hello for %q) = %q, %v; want ErrMalformed", sni, name, err)
		}
		if !bytes.Equal(read, hello) {
			t.Errorf("ReadServerName(hello for %q) read %d bytes, want %d", sni, len(read), len(hello))
		}
	}
}

// TestReadServerNameTimeout has a client send half a ClientHello over TCP
// and stall; the caller's 100ms read deadline must end ReadServerName.
func TestReadServerNameTimeout(t *testing.T) {
	hello := captureHello(t, clientConfig("example.com"))
	half := hello[:len(hello)/2]
	client, server := tcpPair(t)
	if _, err := client.Write(half); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	name, read, err := ReadServerName(server, limit)
	elapsed := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) || name != "" {
		t.Fatalf("ReadServerName(stalled client) = %q, %v; want os.ErrDeadlineExceeded", name, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("ReadServerName(stalled client) = %v, want a net.Error with Timeout()", err)
	}
	if elapsed > time.Second {
		t.Errorf("ReadServerName returned after %v, want about 100ms", elapsed)
	}
	if !bytes.HasPrefix(half, read) {
		t.Errorf("ReadServerName read %d bytes, not a prefix of the %d sent", len(read), len(half))
	}
}

// TestReadServerNameConcurrent runs many reads at once: they share one
// tls.Config, and each must get its own name.
func TestReadServerNameConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		want := fmt.Sprintf("host%d.example.com", i)
		hello := captureHello(t, clientConfig(want))
		wg.Go(func() {
			for range 50 {
				name, _, err := ReadServerName(bytes.NewReader(hello), limit)
				if err != nil || name != want {
					t.Errorf("ReadServerName() = %q, %v; want %q", name, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// hostnameRE is what a returned server name must look like, written
// independently of validHostname.
var hostnameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$`)

// errorClass names the documented kind of a ReadServerName error.
func errorClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, ErrNotTLS):
		return "not TLS"
	case errors.Is(err, ErrTooLarge):
		return "too large"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, io.EOF):
		return "EOF"
	}
	return "unexpected: " + err.Error()
}

// FuzzReadServerName checks, on any input and limit, read both in one go and
// one byte at a time, that ReadServerName:
//   - does not panic;
//   - returns a prefix of the input of at most max bytes (none if max <= 0):
//     the bound is exact, ReadServerName never asks for more;
//   - returns only the documented errors, or a name that is "" or a
//     lower-case host name;
//   - gets the same result from one-byte reads, having read no more;
//   - on success, gets the same result again from just the bytes it read.
func FuzzReadServerName(f *testing.F) {
	hello := captureHello(f, clientConfig("fuzz.example.com"))
	tls12 := clientConfig("")
	tls12.MaxVersion = tls.VersionTLS12
	rng := mrand.New(mrand.NewPCG(1, 2))
	random := make([]byte, 300)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, seed := range [][]byte{
		hello,
		captureHello(f, tls12),
		captureHello(f, clientConfig("UPPER.Example.com")),
		fragment(hello, 100),
		fragment(hello, 3)[:len(hello)/2],
		hello[:len(hello)/2],
		hello[:9],
		hello[:5],
		[]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		random,
		append([]byte("\x16\x03\x01\x01\x00\x01"), random...),
		append([]byte("\x16\x03\x01\x00\x20\x01\x00\x00\x1c"), random[:28]...),
	} {
		f.Add(seed, uint16(limit))
		f.Add(seed, uint16(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, max16 uint16) {
		max := int(max16)
		name, read, err := ReadServerName(bytes.NewReader(data), max)
		if !bytes.HasPrefix(data, read) || len(read) > max {
			t.Fatalf("read %d bytes, not a prefix of the %d-byte input of at most %d bytes", len(read), len(data), max)
		}
		class := errorClass(err)
		if strings.HasPrefix(class, "unexpected") {
			t.Fatalf("error %v is none of the documented ones", err)
		}
		if err == nil && name != "" && (!hostnameRE.MatchString(name) || len(name) > 253) {
			t.Fatalf("server name %q is not a lower-case host name", name)
		}
		if err != nil && name != "" {
			t.Fatalf("server name %q with error %v", name, err)
		}

		name1, read1, err1 := ReadServerName(iotest.OneByteReader(bytes.NewReader(data)), max)
		if name1 != name || errorClass(err1) != class {
			t.Fatalf("one-byte reads: %q, %v; in one go: %q, %v", name1, err1, name, err)
		}
		if len(read1) > len(read) {
			t.Fatalf("one-byte reads read %d bytes, more than the %d in one go", len(read1), len(read))
		}

		if err == nil {
			name2, read2, err2 := ReadServerName(bytes.NewReader(read), max)
			if name2 != name || err2 != nil || !bytes.Equal(read2, read) {
				t.Fatalf("again from the %d bytes read: %q, %d bytes, %v; want %q, all, nil", len(read), name2, len(read2), err2, name)
			}
		}
	})
}

func BenchmarkReadServerName(b *testing.B) {
	hello := captureHello(b, clientConfig("bench.example.com"))
	r := bytes.NewReader(hello)
	b.ReportAllocs()
	b.SetBytes(int64(len(hello)))
	for b.Loop() {
		r.Reset(hello)
		name, _, err := ReadServerName(r, limit)
		if err != nil || name != "bench.example.com" {
			b.Fatalf("ReadServerName() = %q, %v", name, err)
		}
	}
}
