package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// maxEmptyReads is how many reads in a row may return no bytes and no
// error before Read gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Read reads one header from r, which must not have been read from, and
// returns it with rest, the bytes read past the header: the start of the
// client's data, which the caller must forward before anything else read
// from r. rest may be empty.
//
// buf is scratch space the caller may reuse once it is done with rest and
// h.TLVs, which alias it. It should have a capacity of at least
// MaxHeaderLen; Read reads into all of it, so a larger one may bring more
// of the client's data in rest. If it is smaller, Read allocates one.
//
// Read calls r.Read until the bytes it has decide the matter, and not once
// more: it returns as soon as they make a complete header or show that
// none is coming. A client that drips its header a byte at a time is
// waited for; bounding that wait is the caller's job, with a read deadline
// on the connection.
//
// Every error is an *Error. On error, rest holds the bytes read so far,
// which for ReasonNotProxy are the first bytes of a client that sent no
// header (and, since Read stops at the first byte that departs from the
// signatures, usually all of them).
func Read(r io.Reader, buf []byte) (h Header, rest []byte, err error) {
	if cap(buf) < MaxHeaderLen {
		buf = make([]byte, MaxHeaderLen)
	}
	buf = buf[:cap(buf)]
	var (
		n       int // bytes in buf
		scanned int // v1: bytes already searched for the line end
		empty   int // reads in a row that returned nothing
	)
	for {
		m, rerr := r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return Header{}, buf[:n], &Error{Reason: ReasonRead, Detail: fmt.Sprintf("reader returned %d bytes for a %d-byte buffer", m, len(buf)-n)}
		}
		if m > 0 {
			n += m
			empty = 0
			hdr, size, perr := parse(buf[:n], &scanned)
			if perr != nil {
				return Header{}, buf[:n], perr
			}
			if size > 0 {
				return hdr, buf[size:n:n], nil
			}
		}
		if rerr != nil {
			return Header{}, buf[:n], readError(rerr, n)
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return Header{}, buf[:n], &Error{Reason: ReasonRead, Detail: fmt.Sprintf("%d bytes read", n), Err: io.ErrNoProgress}
			}
		}
	}
}

// parse looks at the bytes read so far, b, which are not empty. It returns
// the header and its size once b holds a complete one, an error as soon as
// b cannot be the start of one, or neither if it needs more bytes.
// scanned carries the progress of the search for a v1 line end from one
// call to the next.
func parse(b []byte, scanned *int) (h Header, size int, err *Error) {
	switch b[0] {
	case sigV1[0]:
		return parseV1(b, scanned)
	case sigV2[0]:
		return parseV2(b)
	}
	return Header{}, 0, notProxy(b)
}

// matchPrefix reports whether b, or as much of it as is as long as sig,
// agrees with sig.
func matchPrefix(b []byte, sig string) bool {
	k := min(len(b), len(sig))
	return string(b[:k]) == sig[:k]
}

// notProxy returns the error for bytes b that start with neither
// signature.
func notProxy(b []byte) *Error {
	return &Error{Reason: ReasonNotProxy, Detail: fmt.Sprintf("no PROXY header: starts with %q", b[:min(len(b), 8)])}
}

// readError turns an error from the reader, after n bytes that made no
// decision, into an *Error.
func readError(err error, n int) *Error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Reason: ReasonTruncated, Detail: fmt.Sprintf("connection ended after %d bytes, within the header", n), Err: io.ErrUnexpectedEOF}
	case isTimeout(err):
		return &Error{Reason: ReasonTimeout, Detail: fmt.Sprintf("header incomplete at the deadline, after %d bytes", n), Err: err}
	}
	return &Error{Reason: ReasonRead, Detail: fmt.Sprintf("reading the header, after %d bytes", n), Err: err}
}

// isTimeout reports whether err is a timeout: a passed deadline, or any
// error that says it is a timeout as net.Error does.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
