package tcplb

import (
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// parkAfter is how long a connection must be quiet before its directions
// give up their goroutines and wait in the parking lot instead. A parked
// connection costs its sockets and a few hundred bytes of state; a waiting
// goroutine would add its stack (2 to 8 KiB) and its descriptor. The delay
// keeps connections that talk often (request/response at any real rate)
// off the lot, whose wake-up costs two epoll_ctl calls and a hand-off.
const parkAfter = 50 * time.Millisecond

// canPark reports whether a connection's directions may park: both sockets
// must be TCP, as the lot watches their descriptors directly, and the lot
// must exist (if its epoll instance could not be made, nothing parks).
func canPark(a, b net.Conn) bool {
	_, ok1 := a.(*net.TCPConn)
	_, ok2 := b.(*net.TCPConn)
	if !ok1 || !ok2 {
		return false
	}
	lot.once.Do(startLot)
	return lot.err == nil
}

// lot is the process's parking lot: one epoll instance watching the
// source socket of every parked direction, and one goroutine waiting on
// it. A socket stays registered with Go's own poller as well; the lot only
// tells when to resume. Each registration is one-shot and removed when it
// fires, so a descriptor is in the lot only while its direction is parked.
var lot struct {
	once   sync.Once
	epfd   int
	err    error
	mu     sync.Mutex
	parked map[int32]*direction // by source descriptor
}

// park registers d's source socket with the lot. The caller holds d.pc.mu.
func (d *direction) park() error {
	raw, err := d.src.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return err
	}
	lot.mu.Lock()
	defer lot.mu.Unlock()
	d.fd = int32(fd)
	lot.parked[d.fd] = d
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: d.fd}
	if err := unix.EpollCtl(lot.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(lot.parked, d.fd)
		return err
	}
	return nil
}

// unpark takes d out of the lot if it is still there, and reports whether
// it was: whoever takes a direction out of the lot continues it.
func (d *direction) unpark() bool {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	if lot.parked[d.fd] != d {
		return false
	}
	delete(lot.parked, d.fd)
	unix.EpollCtl(lot.epfd, unix.EPOLL_CTL_DEL, int(d.fd), nil)
	return true
}

func startLot() {
	lot.epfd, lot.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if lot.err != nil {
		return
	}
	lot.mu.Lock()
	lot.parked = make(map[int32]*direction)
	lot.mu.Unlock()
	go runLot()
}

// runLot resumes each parked direction whose socket has become readable
// (data, FIN or an error) on a pooled goroutine.
func runLot() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(lot.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			lot.mu.Lock()
			d := lot.parked[ev.Fd]
			lot.mu.Unlock()
			if d != nil && d.unpark() {
				workers.run(d.resume)
			}
		}
	}
}
