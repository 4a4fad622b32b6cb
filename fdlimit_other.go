//go:build !unix

package tcplb

// readFdLimit leaves the descriptor gate off: the limit is not known here.
func readFdLimit() { fds.setLimit(0) }
