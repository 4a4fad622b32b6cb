//go:build !race

package tcplb

const raceEnabled = false
