//go:build wasip1

package proxywasm

import "time"

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clock_time_get(clockID uint32, precision uint64, out *uint64) uint32

var clockOut uint64

// WallClockNano reads the wall clock, in unix nanoseconds, with one host
// call. (time.Now makes two: the wall clock and the monotonic one, which a
// plugin timing its requests in milliseconds of unix time does not need;
// and a time.Time is built only to be converted back to a number.)
func WallClockNano() int64 {
	if clock_time_get(0, 1000, &clockOut) != 0 { // 0: realtime, µs precision
		return wallClockFallback()
	}
	return int64(clockOut)
}

// wallClockFallback is WallClockNano's rare case, out of line: its code
// would otherwise sit among the lines every read of the clock runs.
//
//go:noinline
func wallClockFallback() int64 { return time.Now().UnixNano() }
