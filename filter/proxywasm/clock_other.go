//go:build !wasip1

package proxywasm

import "time"

// WallClock is time.Now outside wasm (see clock_wasip1.go).
func WallClock() time.Time { return time.Now().Round(0) }
