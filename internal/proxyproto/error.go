package proxyproto

// Error is the error Read returns, for input that is not a valid header
// and for a failure of the reader. Reason is one of the Reason constants,
// fit for a metric label; Detail says what was wrong, for a log line.
type Error struct {
	Reason string
	Detail string

	// Err is the underlying error for ReasonTruncated (io.ErrUnexpectedEOF),
	// ReasonTimeout (the reader's timeout error, for which
	// errors.Is(err, os.ErrDeadlineExceeded) holds when the reader is a
	// net.Conn past its deadline) and ReasonRead; nil for the others.
	Err error
}

// Error returns "proxy protocol: " followed by the detail and, if there is
// one, the underlying error.
func (e *Error) Error() string {
	if e.Err != nil {
		return "proxy protocol: " + e.Detail + ": " + e.Err.Error()
	}
	return "proxy protocol: " + e.Detail
}

// Unwrap returns the underlying error, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Reasons for an Error.
const (
	// ReasonNotProxy: the first bytes are neither the v1 nor the v2
	// signature, as from a client that sends no header at all.
	ReasonNotProxy = "not_proxy"

	// ReasonMalformed: a v1 line that breaks the syntax: a missing or
	// doubled space, a bad address or port, a lone CR or LF, a missing or
	// extra field.
	ReasonMalformed = "malformed"

	// ReasonTooLong: a v1 line with no CRLF within MaxV1Len bytes, or a v2
	// header longer than MaxHeaderLen.
	ReasonTooLong = "too_long"

	// ReasonTruncated: the connection ended before the header did. The
	// Error wraps io.ErrUnexpectedEOF.
	ReasonTruncated = "truncated"

	// ReasonVersion: a v2 signature followed by a version other than 2.
	ReasonVersion = "bad_version"

	// ReasonCommand: a v2 command other than LOCAL (0) and PROXY (1).
	ReasonCommand = "bad_command"

	// ReasonFamily: an unknown protocol in a v1 line or a v1 address of the
	// other family than the line announces; in a v2 PROXY header, a
	// family and transport pair other than the accepted ones (datagrams
	// among them), or a length too short for the family's addresses.
	ReasonFamily = "bad_family"

	// ReasonTLV: v2 bytes after the addresses that are not whole TLVs.
	ReasonTLV = "bad_tlv"

	// ReasonTimeout: the reader timed out (the caller's read deadline
	// passed) before the header was complete.
	ReasonTimeout = "timeout"

	// ReasonRead: the reader failed otherwise, for example with a
	// connection reset, or returned nothing too many times in a row.
	ReasonRead = "read_error"
)

// Reasons returns every Reason constant, for setting up metrics with all
// their labels.
func Reasons() []string {
	return []string{
		ReasonNotProxy, ReasonMalformed, ReasonTooLong, ReasonTruncated,
		ReasonVersion, ReasonCommand, ReasonFamily, ReasonTLV,
		ReasonTimeout, ReasonRead,
	}
}
