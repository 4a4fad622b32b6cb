//go:build !unix

package dgram

// readReply reads the backend's next reply into the session's own buffer
// (on Windows, where a raw read cannot wait without consuming the
// datagram).
func (s *session) readReply() (*[]byte, int, error) {
	if s.buf == nil {
		b := make([]byte, MaxDatagram+1)
		s.buf = &b
	}
	n, err := s.conn.Read(*s.buf)
	return s.buf, n, err
}

func doneReply(*[]byte) {}
