//go:build unix

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// reloadSignals are the signals that reload the config (SIGHUP) and upgrade
// the binary (SIGUSR2).
func reloadSignals() (reload, upgrade os.Signal, ok bool) {
	return syscall.SIGHUP, syscall.SIGUSR2, true
}

// upgradeTimeout bounds how long the new process of an upgrade may take to
// say it is ready before it is killed and the old one carries on.
const upgradeTimeout = 30 * time.Second

// startUpgrade starts exe, with the same arguments, handing it the open
// sockets, and waits until it says it is ready (it then serves them too) or
// fails. On failure the new process is killed and the error says why; the
// caller keeps serving.
func startUpgrade(exe string, socks *sockets) (pid int, err error) {
	files, env, err := socks.files()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = append(files, w)
	cmd.Env = append(os.Environ(), listenFdsEnv+"="+env, readyFdEnv+"="+strconv.Itoa(3+len(files)))
	err = cmd.Start()
	restoreNonblock(files)
	w.Close() // the child holds the write end now: EOF means it is gone
	if err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		switch {
		case line == "ready\n":
			ready <- nil
		case err != nil:
			ready <- errors.New("it exited or closed its readiness pipe before it was ready")
		default:
			ready <- fmt.Errorf("it said %q instead of ready", line)
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(upgradeTimeout):
		err = fmt.Errorf("not ready within %v", upgradeTimeout)
	}
	if err != nil {
		cmd.Process.Kill()
		if werr := <-exited; werr != nil {
			err = fmt.Errorf("%v (%v)", err, werr)
		}
		return 0, err
	}
	return cmd.Process.Pid, nil
}

// signalReady tells the process that started this one in an upgrade that it
// serves, if there is one.
func signalReady() error {
	v, ok := os.LookupEnv(readyFdEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(readyFdEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", readyFdEnv, v)
	}
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	_, err = f.WriteString("ready\n")
	return err
}

// systemdSockets returns the sockets passed by systemd socket activation
// (LISTEN_PID, LISTEN_FDS; sd_listen_fds(3)), and clears those variables.
func systemdSockets() ([]*os.File, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: not a count", fds)
	}
	var files []*os.File
	for fd := 3; fd < 3+n; fd++ {
		syscall.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "systemd socket "+strconv.Itoa(fd)))
	}
	return files, nil
}

// sdNotify sends state to systemd when it asked for notifications
// (NOTIFY_SOCKET; sd_notify(3)); otherwise it does nothing.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// sdReloading is the notification that a reload starts, with the monotonic
// time that systemd's Type=notify-reload wants.
func sdReloading() string {
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)
}
