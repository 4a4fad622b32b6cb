package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// sockets hands out listening sockets and keeps track of them, so that a
// binary upgrade can pass them to the new process. A socket comes, in this
// order, from the process that started this one in an upgrade (matched by
// the configured address, so "127.0.0.1:0" finds the port it got before),
// from systemd socket activation (matched by the socket's address), or is
// bound anew.
type sockets struct {
	mu        sync.Mutex
	inherited map[string]*os.File // from an upgrade, by key
	activated []*os.File          // from systemd, not yet claimed
	open      map[string]*held    // in use, by key
}

// Environment of a process started by an upgrade: listenFdsEnv lists the
// inherited sockets as "fd quoted-key" lines; readyFdEnv is the descriptor to
// write "ready" to once serving.
const (
	listenFdsEnv = "TCPLB_LISTEN_FDS"
	readyFdEnv   = "TCPLB_READY_FD"
)

// inheritSockets collects the sockets this process was started with, and
// clears the environment variables that described them so that processes
// it starts do not take them for theirs.
func inheritSockets() (*sockets, error) {
	s := &sockets{inherited: map[string]*os.File{}, open: map[string]*held{}}
	if v, ok := os.LookupEnv(listenFdsEnv); ok {
		os.Unsetenv(listenFdsEnv)
		for line := range strings.Lines(v) {
			fdStr, quoted, _ := strings.Cut(strings.TrimSpace(line), " ")
			fd, err := strconv.Atoi(fdStr)
			key, qerr := strconv.Unquote(quoted)
			if err != nil || qerr != nil || fd < 3 {
				return nil, fmt.Errorf("%s: bad entry %q", listenFdsEnv, line)
			}
			s.inherited[key] = os.NewFile(uintptr(fd), "listener "+key)
		}
	}
	files, err := systemdSockets()
	if err != nil {
		return nil, err
	}
	s.activated = files
	return s, nil
}

// listen returns a listening socket for the configured address addr,
// known across upgrades as key.
func (s *sockets) listen(key, addr string) (*netListener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] != nil {
		return nil, fmt.Errorf("%s: already in use by this process", addr)
	}
	ln, err := s.claim(key, addr)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		// Keep-alive off on client connections too: the idle timeout
		// closes connections whose peer has gone.
		lc := net.ListenConfig{KeepAlive: -1}
		if ln, err = lc.Listen(context.Background(), "tcp", addr); err != nil {
			return nil, err
		}
	}
	sc, _ := ln.(syscall.Conn) // every listener net makes is one
	h, err := s.hold(key, sc)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %v", addr, err)
	}
	return &netListener{Listener: ln, held: h}, nil
}

// listenPacket returns a UDP socket for the configured address addr,
// known across upgrades as key, and the daemon's hold on it (forget it
// when the listener goes).
func (s *sockets) listenPacket(key, addr string) (*net.UDPConn, *held, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] != nil {
		return nil, nil, fmt.Errorf("%s: already in use by this process", addr)
	}
	pc, err := s.claimPacket(key, addr)
	if err != nil {
		return nil, nil, err
	}
	if pc == nil {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		if pc, err = net.ListenUDP("udp", ua); err != nil {
			return nil, nil, err
		}
	}
	h, err := s.hold(key, pc)
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("%s: %v", addr, err)
	}
	return pc, h, nil
}

// hold records c as open under key, with the daemon's duplicate of it.
// s.mu is held.
func (s *sockets) hold(key string, c syscall.Conn) (*held, error) {
	h := &held{s: s, key: key, dup: -1}
	if c != nil {
		var err error
		if h.dup, err = rawDup(c); err != nil {
			return nil, err
		}
	}
	s.open[key] = h
	return h, nil
}

// claim returns an inherited socket for key or addr, or nil.
func (s *sockets) claim(key, addr string) (net.Listener, error) {
	if f := s.inherited[key]; f != nil {
		delete(s.inherited, key)
		defer f.Close()
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("inherited socket for %s: %v", addr, err)
		}
		return ln, nil
	}
	for i, f := range s.activated {
		ln, err := net.FileListener(f)
		if err != nil {
			continue
		}
		if sameAddr(addr, ln.Addr()) {
			s.activated = slices.Delete(s.activated, i, i+1)
			f.Close()
			return ln, nil
		}
		ln.Close()
	}
	return nil, nil
}

// claimPacket returns an inherited UDP socket for key or addr, or nil.
func (s *sockets) claimPacket(key, addr string) (*net.UDPConn, error) {
	if f := s.inherited[key]; f != nil {
		delete(s.inherited, key)
		defer f.Close()
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return nil, fmt.Errorf("inherited socket for %s: %v", addr, err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return nil, fmt.Errorf("inherited socket for %s is not a UDP socket", addr)
		}
		return uc, nil
	}
	for i, f := range s.activated {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			continue
		}
		if uc, ok := pc.(*net.UDPConn); ok && sameAddr(addr, uc.LocalAddr()) {
			s.activated = slices.Delete(s.activated, i, i+1)
			f.Close()
			return uc, nil
		}
		pc.Close()
	}
	return nil, nil
}

// sameAddr reports whether a socket bound to got serves the configured
// address want: the same port, and the same IP, or any IP when want's host
// is empty or unspecified.
func sameAddr(want string, got net.Addr) bool {
	var ip net.IP
	var gport int
	switch a := got.(type) {
	case *net.TCPAddr:
		ip, gport = a.IP, a.Port
	case *net.UDPAddr:
		ip, gport = a.IP, a.Port
	default:
		return false
	}
	host, port, err := net.SplitHostPort(want)
	if err != nil || port != strconv.Itoa(gport) {
		return false
	}
	if host == "" {
		return ip.IsUnspecified()
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ips, ip.Equal)
}

// release closes what was inherited and not claimed by the configuration,
// once the process serves.
func (s *sockets) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, f := range s.inherited {
		f.Close()
		delete(s.inherited, addr)
	}
	for _, f := range s.activated {
		f.Close()
	}
	s.activated = nil
}

// files returns duplicates of the open sockets and the environment entry
// that describes them to a process started with them as ExtraFiles (the
// first becoming descriptor 3). The caller closes the files.
func (s *sockets) files() ([]*os.File, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []*os.File
	var env strings.Builder
	for key, h := range s.open {
		f, err := h.file()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, "", fmt.Errorf("socket %s: %v", key, err)
		}
		fmt.Fprintf(&env, "%d %s\n", 3+len(files), strconv.Quote(key))
		files = append(files, f)
	}
	return files, env.String(), nil
}

// held is a socket in use that the daemon keeps a raw duplicate of (not
// in Go's poller) until a reload removes its listener (forget), so that an
// upgrade can pass it on even after a balancer on the event loops has
// taken the socket over and closed the listener itself, or a UDP balancer
// has stopped reading it.
type held struct {
	s    *sockets
	key  string
	dup  int // -1 if none (Windows)
	once sync.Once
}

// forget closes the daemon's duplicate, so that an upgrade does not pass
// on the socket and, once the balancer has let go of it, the port is free.
func (h *held) forget() {
	h.once.Do(func() {
		h.s.mu.Lock()
		if h.s.open[h.key] == h {
			delete(h.s.open, h.key)
		}
		h.s.mu.Unlock()
		closeDup(h.dup)
	})
}

// file returns a new duplicate of the socket, for an upgrade.
func (h *held) file() (*os.File, error) {
	if h.dup < 0 {
		return nil, fmt.Errorf("cannot be passed on on this system")
	}
	return dupFile(h.dup, "listener "+h.key)
}

// netListener is a TCP listening socket that the daemon holds (see held).
// Accept returns the inner listener's connections unchanged
// (*net.TCPConn, which the splice path needs).
type netListener struct {
	net.Listener
	*held
}

// SyscallConn gives the event loops the socket (see tcplb.Balancer.Serve).
func (l *netListener) SyscallConn() (syscall.RawConn, error) {
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T has no descriptor", l.Listener)
	}
	return sc.SyscallConn()
}
