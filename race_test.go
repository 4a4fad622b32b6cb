//go:build race

package tcplb

const raceEnabled = true
