package main

import (
	"errors"
	"os"
	"syscall"
)

// rawDup does nothing on Windows, which has no binary upgrade.
func rawDup(syscall.Conn) (int, error) { return -1, nil }

func closeDup(int) {}

func dupFile(int, string) (*os.File, error) { return nil, errors.New("not on Windows") }
