package main

import "github.com/modelcache/modelcache/cachecore"

// refetch hands an unusable answer to a partial embeddings batch to the
// protocol (cachecore's Flight.Refetch), which replaces the response with
// the answer to the whole request. It reports whether the response must
// stay held until that answer arrives.
func (s *stream) refetch(reason cachecore.Reason) bool {
	s.phase = phaseServed // the response is now ours to finish
	return s.p.performAll(s.fl.Refetch(reason, s.reqHeaders))
}
