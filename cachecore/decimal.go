package cachecore

// Decimal integers on the request path: the keys of shared data, the
// Cache-Status and Age values, a request's content-length. One small
// formatter and parser instead of strconv's general ones, which are
// larger and would be a second copy of the same work in the code a
// request runs: under V8 a request that arrives cold pays for every
// function it enters (RATIONALE.md, "The code a request runs").

func appendUint(b []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// appendDec is appendUint writing the digits straight into b, with 32-bit
// arithmetic when v fits (slot numbers do): no scratch copy.
func appendDec(b []byte, v uint64) []byte {
	if v >= 1<<32 {
		return appendUint(b, v)
	}
	x := uint32(v)
	n := 1
	for y := x; y >= 10; y /= 10 {
		n++
	}
	for i := 0; i < n; i++ {
		b = append(b, '0')
	}
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + x%10)
		x /= 10
	}
	return b
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		return appendUint(b, uint64(-v))
	}
	return appendUint(b, uint64(v))
}

func itoa(v int64) string {
	return string(appendInt(nil, v))
}

// parseDecimal reads s as strconv.ParseUint(s, 10, 63) does: one or more
// ASCII digits, nothing else, at most 1<<63 - 1. Not inlined: a miss
// parses its request's content-length and its response's :status, and
// runs one copy of the loop rather than one in each caller.
//
//go:noinline
func parseDecimal(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 || n > (1<<63-1-uint64(d))/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}
