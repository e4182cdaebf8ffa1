package cachecore

import "testing"

// TestAnsweredSkipsNothing: a stream the host skips the response body of
// (Answered) is one whose ResponseBody does nothing: Continue, no actions.
func TestAnsweredSkipsNothing(t *testing.T) {
	for p := phaseIdle; p <= phaseServed; p++ {
		s := &Stream{streamFields: streamFields{phase: p}}
		if !s.Answered() {
			continue
		}
		for _, end := range []bool{false, true} {
			if v, acts := s.ResponseBody(10, end, nil); v != Continue || len(acts) != 0 {
				t.Errorf("phase %d: Answered, but ResponseBody gives %v with %d actions", p, v, len(acts))
			}
		}
	}
	for _, p := range []phase{phaseBuffering, phaseStreaming, phaseRecording} {
		if (&Stream{streamFields: streamFields{phase: p}}).Answered() {
			t.Errorf("phase %d reads its response body: not Answered", p)
		}
	}
}
