//go:build !wasip1

package proxywasm

import "time"

// WallClockNano is time.Now in unix nanoseconds outside wasm (see
// clock_wasip1.go).
func WallClockNano() int64 { return time.Now().UnixNano() }
