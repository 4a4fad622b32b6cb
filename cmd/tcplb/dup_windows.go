package main

import (
	"errors"
	"os"
)

// keepDup does nothing on Windows, which has no binary upgrade.
func (l *netListener) keepDup() error { l.dup = -1; return nil }

func closeDup(int) {}

func dupFile(int, string) (*os.File, error) { return nil, errors.New("not on Windows") }
