//go:build !linux

package tcplb

// copy moves bytes from d.src to d.dst until d.src's EOF (nil) or an error.
// Outside Linux it copies through a pooled buffer.
func (d *direction) copy() error {
	return d.copyBuffered()
}
