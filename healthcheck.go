package tcplb

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults for a HealthCheck's zero-valued fields, as in HAProxy
// ("inter 2s rise 2 fall 3").
const (
	DefaultHealthInterval = 2 * time.Second // time between the end of one check and the start of the next
	DefaultHealthRise     = 2               // consecutive successes that bring a down backend up
	DefaultHealthFall     = 3               // consecutive failures that take an up backend down
)

// maxHealthExpect is the longest HealthCheck.Expect, in bytes.
const maxHealthExpect = 64 << 10

// HealthCheck describes the active health check of a pool's backends: every
// Interval each backend is checked once, and a check that has not succeeded
// within Timeout fails. An up backend goes down after Fall consecutive
// failed checks; a down backend comes up after Rise consecutive successes.
//
// A check is of one of four kinds:
//
//   - tcp (Send, Expect and HTTP empty): the backend accepts a connection.
//   - send/expect: after connecting, Send is written, and the reply must
//     start with Expect. Either may be empty: Expect alone checks a banner
//     that the backend sends first; Send alone only checks that the write
//     succeeds.
//   - http: an HTTP/1.1 GET request, whose response status must be the
//     wanted one (see HTTPCheck).
//   - udp send/expect (Network "udp"): Send goes as one datagram over a
//     connected UDP socket, and the first datagram back must start with
//     Expect (see Network).
//
// The zero value is a tcp check with the defaults. WithDefaults fills in
// the defaults and Validate reports the first bad field; use them in that
// order. A check only reads its HealthCheck, so one value may be used by
// concurrent checks of many backends, but it must not be modified while
// in use.
type HealthCheck struct {
	// Interval is the time between the end of one check of a backend and
	// the start of the next. If zero, DefaultHealthInterval (2s) is used.
	Interval time.Duration

	// Timeout bounds one whole check: connect, then the exchange. If zero,
	// Interval is used, as HAProxy does without "timeout check".
	Timeout time.Duration

	// Rise is the number of consecutive successful checks that bring a down
	// backend up. If zero, DefaultHealthRise (2) is used.
	Rise int

	// Fall is the number of consecutive failed checks that take an up
	// backend down. If zero, DefaultHealthFall (3) is used.
	Fall int

	// Port, if not zero, is the port checked instead of the backend's own
	// (0 to 65535); traffic still goes to the backend's port.
	Port int

	// Network is the transport of the check, as in net.Dial: "" or "tcp"
	// (the default) for the tcp, send/expect and http checks, which
	// connect over TCP; "udp" for a send/expect check over UDP, for the
	// backends of a UDPBalancer (or any UDP service on Port).
	//
	// A udp check dials a UDP socket connected to the backend (its own
	// port, or Port) and writes Send, which must not be empty, as one
	// datagram of at most 65507 bytes. With Expect set, it then reads one
	// datagram within Timeout, which must start with Expect (a shorter
	// datagram fails). With Expect empty the check waits the whole Timeout
	// for a reply and passes unless the backend's host answers with an
	// ICMP port unreachable (the socket's ECONNREFUSED); a reply ends the
	// wait early and passes too. Such a check tells only that the port is
	// not closed: a backend that is down without an ICMP error (a host
	// that is gone, a firewall that drops) passes, so set Expect when the
	// protocol has a reply. HTTP is not allowed with "udp".
	Network string

	// Send is written, in one write, once the connection is made. It may
	// be empty, except for a udp check, where it is the datagram sent.
	Send string

	// Expect, if not empty, is what the backend's reply must start with,
	// within Timeout; bytes after it are ignored. At most 64 KiB. If empty,
	// only the connect (and the write of Send) is checked.
	Expect string

	// HTTP, if not nil, makes the check an HTTP GET request instead of
	// Send/Expect, which must then be empty.
	HTTP *HTTPCheck
}

// Network values of a HealthCheck.
const (
	HealthTCP = "tcp" // connect over TCP: the tcp, send/expect and http checks
	HealthUDP = "udp" // a send/expect check over UDP
)

// maxUDPSend is the longest Send of a udp check, in bytes: the largest
// UDP payload over IPv4 (65535 less the IPv4 and UDP headers).
const maxUDPSend = 65535 - 20 - 8

// HTTPCheck is an HTTP health check: an HTTP/1.1 GET request on a new
// connection, with "Connection: close" and "User-Agent: tcplb-health-check".
// The check succeeds on the wanted status; redirects are not followed (a
// 3xx is a result), the body is not looked at, and informational (1xx)
// responses are skipped.
type HTTPCheck struct {
	// Path is the request's path, with an optional query; it must start
	// with "/". If empty, "/" is used.
	Path string

	// Host is the request's Host header. If empty, the checked address
	// ("host:port", with the check port if HealthCheck.Port is set) is
	// used.
	Host string

	// Status is the wanted response status, 100 to 599. If zero, any 2xx
	// or 3xx status is a success, as in HAProxy.
	Status int
}

// WithDefaults returns a copy of hc with its zero fields set to their
// defaults. The copy has its own HTTPCheck, so it does not share the
// caller's.
func (hc HealthCheck) WithDefaults() HealthCheck {
	if hc.Interval == 0 {
		hc.Interval = DefaultHealthInterval
	}
	if hc.Timeout == 0 {
		hc.Timeout = hc.Interval
	}
	if hc.Rise == 0 {
		hc.Rise = DefaultHealthRise
	}
	if hc.Fall == 0 {
		hc.Fall = DefaultHealthFall
	}
	if hc.HTTP != nil {
		h := *hc.HTTP
		if h.Path == "" {
			h.Path = "/"
		}
		hc.HTTP = &h
	}
	return hc
}

// Validate reports the first field of hc that is out of range, naming the
// field and its value, or returns nil. It is meant for a value returned by
// WithDefaults: a zero Interval, say, is an error here.
func (hc HealthCheck) Validate() error {
	switch {
	case hc.Interval <= 0:
		return fmt.Errorf("health check: interval %v: must be greater than 0", hc.Interval)
	case hc.Timeout <= 0:
		return fmt.Errorf("health check: timeout %v: must be greater than 0", hc.Timeout)
	case hc.Rise < 1:
		return fmt.Errorf("health check: rise %d: must be at least 1", hc.Rise)
	case hc.Fall < 1:
		return fmt.Errorf("health check: fall %d: must be at least 1", hc.Fall)
	case hc.Port < 0 || hc.Port > 65535:
		return fmt.Errorf("health check: port %d: must be between 0 and 65535", hc.Port)
	case len(hc.Expect) > maxHealthExpect:
		return fmt.Errorf("health check: expect of %d bytes: must be at most %d", len(hc.Expect), maxHealthExpect)
	case hc.Network != "" && hc.Network != HealthTCP && hc.Network != HealthUDP:
		return fmt.Errorf("health check: network %q: must be tcp or udp", hc.Network)
	case hc.Network == HealthUDP && hc.HTTP != nil:
		return errors.New("health check: network udp cannot be combined with http (an HTTP check connects over TCP)")
	case hc.Network == HealthUDP && hc.Send == "":
		return errors.New("health check: network udp: send must not be empty (a UDP check learns nothing without a datagram to send)")
	case hc.Network == HealthUDP && len(hc.Send) > maxUDPSend:
		return fmt.Errorf("health check: network udp: send of %d bytes: must be at most %d (one datagram)", len(hc.Send), maxUDPSend)
	}
	h := hc.HTTP
	if h == nil {
		return nil
	}
	if hc.Send != "" || hc.Expect != "" {
		return errors.New("health check: http cannot be combined with send/expect")
	}
	if !strings.HasPrefix(h.Path, "/") {
		return fmt.Errorf("health check: http path %q: must start with \"/\"", h.Path)
	}
	if _, err := url.ParseRequestURI(h.Path); err != nil {
		return fmt.Errorf("health check: http path %q: %v", h.Path, errors.Unwrap(err))
	}
	if strings.ContainsFunc(h.Host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("health check: http host %q: must not contain spaces or control characters", h.Host)
	}
	if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
		return fmt.Errorf("health check: http status %d: must be 0 or between 100 and 599", h.Status)
	}
	return nil
}

// String describes the kind of check for logs: "tcp", "send/expect",
// "http GET /path", or for Network "udp" "udp send/expect" (with Expect)
// or "udp send" (without).
func (hc *HealthCheck) String() string {
	switch {
	case hc == nil:
		return "none"
	case hc.Network == HealthUDP && hc.Expect != "":
		return "udp send/expect"
	case hc.Network == HealthUDP:
		return "udp send"
	case hc.HTTP != nil:
		return "http GET " + cmp.Or(hc.HTTP.Path, "/")
	case hc.Send != "" || hc.Expect != "":
		return "send/expect"
	}
	return "tcp"
}

// probe runs one check of the backend at addr ("host:port", an IPv6 host in
// brackets; the host may be a name, resolved now), with hc already
// defaulted. It returns nil if the backend passed, or why it did not: one
// short line for an operator, such as
//
//	connect 127.0.0.1:3001: connection refused
//	expect "PONG": got "ERR x"
//	expect "PONG": timeout after 2s
//	http GET /healthz: status 503
//	udp 127.0.0.1:53: connection refused (ICMP port unreachable)
//
// The check ends after hc.Timeout or when ctx ends, whichever is first. If
// ctx ends first the error wraps ctx's cause (errors.Is(err,
// context.Canceled)), and is not a verdict on the backend. If HTTP is set,
// Send and Expect are ignored. The connection is closed before probe
// returns. probe is safe for concurrent use.
func (hc *HealthCheck) probe(ctx context.Context, addr string) error {
	if hc == nil {
		return errors.New("no health check")
	}
	if hc.Port != 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("address %q: %v", addr, stripAddr(err))
		}
		addr = net.JoinHostPort(host, strconv.Itoa(hc.Port))
	}
	var req *http.Request
	if hc.HTTP != nil {
		var err error
		if req, err = hc.HTTP.request(addr); err != nil {
			return err
		}
	}

	if hc.Network == HealthUDP {
		return hc.probeUDP(ctx, addr)
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: -1} // a check is short: no keep-alive probes
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return hc.failure(parent, "connect "+addr, err)
	}
	defer c.Close()
	if req == nil && hc.Send == "" && hc.Expect == "" {
		return nil
	}

	// From here every read and write ends at the check's deadline, or at
	// once when ctx ends.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if req != nil {
		return hc.exchangeHTTP(parent, c, req)
	}
	if hc.Send != "" {
		if _, err := io.WriteString(c, hc.Send); err != nil {
			return hc.failure(parent, "send", err)
		}
	}
	if hc.Expect == "" {
		return nil
	}
	return hc.expect(parent, c)
}

// probeUDP is probe for Network "udp": Send as one datagram on a socket
// connected to addr, then one datagram back that starts with Expect, or,
// with Expect empty, no ICMP port unreachable within Timeout.
func (hc *HealthCheck) probeUDP(parent context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(parent, hc.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr) // sends nothing: resolves and connects the socket
	if err != nil {
		return hc.failure(parent, "udp "+addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// A port unreachable is reported on the socket's next call, a read
	// mostly (or a write, after an earlier datagram's).
	refused := func(err error) error {
		if errors.Is(err, syscall.ECONNREFUSED) && parent.Err() == nil {
			return fmt.Errorf("udp %s: connection refused (ICMP port unreachable)", addr)
		}
		return nil
	}
	if _, err := io.WriteString(c, hc.Send); err != nil {
		return cmp.Or(refused(err), hc.failure(parent, "udp "+addr+": send", err))
	}
	want := hc.Expect
	what := "expect " + quote(want)
	buf := make([]byte, max(len(want), quoteMax)+1) // room to show a wrong reply; a longer datagram is cut
	n, err := c.Read(buf)
	if err != nil {
		if r := refused(err); r != nil {
			return r
		}
		if want == "" {
			what = "udp " + addr + ": wait for a reply"
		}
		err = hc.failure(parent, what, err)
		if te := (*timeoutError)(nil); want == "" && errors.As(err, &te) {
			return nil // no reply, but no port unreachable either
		}
		return err
	}
	got := buf[:n]
	if len(got) < len(want) || string(got[:len(want)]) != want {
		if i := mismatchAt(got, want); i < len(got) && i >= quoteMax {
			return fmt.Errorf("%s: got %s (differs at byte %d)", what, quote(string(got)), i)
		}
		return fmt.Errorf("%s: got %s", what, quote(string(got)))
	}
	return nil
}

// mismatchAt returns the index of the first byte where got and want
// differ, or the length of the shorter if it is a prefix of the other.
func mismatchAt(got []byte, want string) int {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return i
}

// expect reads from c until the reply is known to start with hc.Expect or
// known not to: it fails at the first byte that differs.
func (hc *HealthCheck) expect(parent context.Context, c net.Conn) error {
	want := hc.Expect
	what := "expect " + quote(want)
	buf := make([]byte, max(len(want), quoteMax)) // room to show a wrong reply
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if m > 0 {
			end := min(n+m, len(want))
			for i := n; i < end; i++ {
				if buf[i] != want[i] {
					got := buf[:n+m]
					if i >= quoteMax {
						return fmt.Errorf("%s: got %s (differs at byte %d)", what, quote(string(got)), i)
					}
					return fmt.Errorf("%s: got %s", what, quote(string(got)))
				}
			}
			n += m
			if n >= len(want) {
				return nil
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF) && n == 0:
			return fmt.Errorf("%s: connection closed with no reply", what)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%s: connection closed after %s", what, quote(string(buf[:n])))
		}
		err = hc.failure(parent, what, err)
		if te := (*timeoutError)(nil); n > 0 && errors.As(err, &te) {
			return fmt.Errorf("%w (got %s)", err, quote(string(buf[:n])))
		}
		return err
	}
}

// request returns the check's request to addr.
func (h *HTTPCheck) request(addr string) (*http.Request, error) {
	path := cmp.Or(h.Path, "/")
	u, err := url.ParseRequestURI(path)
	if err != nil || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("http path %q: invalid", path)
	}
	u.Scheme, u.Host = "http", addr
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"User-Agent": {"tcplb-health-check"}},
		Host:       cmp.Or(h.Host, addr),
		Close:      true, // "Connection: close"
	}, nil
}

// Limits on what an HTTP check reads.
const (
	maxHTTPResponse = 64 << 10 // bytes of the whole response
	maxHTTPBody     = 4 << 10  // bytes of the body read before closing
	maxHTTPInfo     = 5        // informational (1xx) responses skipped
)

var errResponseTooLong = fmt.Errorf("response longer than %d bytes", maxHTTPResponse)

// exchangeHTTP writes req on c and judges the response.
func (hc *HealthCheck) exchangeHTTP(parent context.Context, c net.Conn, req *http.Request) error {
	what := "http GET " + req.URL.RequestURI()
	if err := req.Write(c); err != nil {
		return hc.failure(parent, what, err)
	}
	rec := &responseReader{r: c, left: maxHTTPResponse}
	br := bufio.NewReader(rec)
	var resp *http.Response
	for range maxHTTPInfo {
		var err error
		resp, err = http.ReadResponse(br, req)
		switch {
		case err == nil:
		case errors.Is(err, errResponseTooLong):
			return fmt.Errorf("%s: %v", what, err)
		case isNetError(err):
			return hc.failure(parent, what, err)
		case rec.eof && len(rec.head) == 0:
			return fmt.Errorf("%s: connection closed with no response", what)
		case rec.eof:
			return fmt.Errorf("%s: connection closed after %s", what, quote(string(rec.head)))
		default:
			return fmt.Errorf("%s: malformed response %s", what, quote(string(rec.head)))
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	// Read a little of the body, so that a short one is consumed before
	// the connection is closed, but do not call resp.Body.Close: it would
	// read the whole body. Errors here do not change the result.
	io.CopyN(io.Discard, resp.Body, maxHTTPBody)

	want, got := hc.HTTP.Status, resp.StatusCode
	switch {
	case want == 0 && (got < 200 || got > 399):
		return fmt.Errorf("%s: status %d", what, got)
	case want != 0 && got != want:
		return fmt.Errorf("%s: status %d, want %d", what, got, want)
	}
	return nil
}

// responseReader reads at most left bytes of an HTTP response, keeps the
// first quoteMax of them, to show in an error, and notes the end of the
// stream.
type responseReader struct {
	r    io.Reader
	left int
	head []byte
	eof  bool
}

func (r *responseReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errResponseTooLong
	}
	p = p[:min(len(p), r.left)]
	n, err := r.r.Read(p)
	r.left -= n
	r.eof = r.eof || errors.Is(err, io.EOF)
	if k := min(n, quoteMax-len(r.head)); k > 0 {
		r.head = append(r.head, p[:k]...)
	}
	return n, err
}

// failure returns why a check failed, given the error err that ended the
// step named what: the timeout, or the reason in err without the address
// and operation that net's errors repeat. If the caller's context has
// ended, it returns that instead.
func (hc *HealthCheck) failure(parent context.Context, what string, err error) error {
	if parent.Err() != nil {
		return fmt.Errorf("health check stopped: %w", context.Cause(parent))
	}
	// A socket deadline taken from parent's may fire just before parent's
	// own timer does.
	if dl, ok := parent.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("health check stopped: %w", context.DeadlineExceeded)
	}
	if timedOut(err) {
		return &timeoutError{what: what, after: hc.Timeout}
	}
	return fmt.Errorf("%s: %s", what, netReason(err))
}

// timeoutError is a check that ran out of time.
type timeoutError struct {
	what  string
	after time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s: timeout after %v", e.what, e.after) }

// Timeout reports true, as net's timeout errors do.
func (e *timeoutError) Timeout() bool { return true }

// timedOut reports whether err is a timeout.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// isNetError reports whether err came from the connection rather than from
// parsing what was read on it.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// netReason returns the gist of a net error: "connection refused" rather
// than "dial tcp 127.0.0.1:3001: connect: connection refused".
func netReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "lookup " + dnsErr.Name + ": " + dnsErr.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	for {
		oe, ok := err.(*net.OpError)
		if !ok || oe.Err == nil {
			break
		}
		err = oe.Err
	}
	return stripAddr(err).Error()
}

// quoteMax is the number of bytes of a reply or an expected string that an
// error shows.
const quoteMax = 64

// quote returns s quoted, cut to quoteMax bytes with "..." after the
// closing quote if it was longer.
func quote(s string) string {
	if len(s) > quoteMax {
		return strconv.Quote(s[:quoteMax]) + "..."
	}
	return strconv.Quote(s)
}
