package modelsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Control API paths. They share the model's listener so that an Envoy
// e2e setup needs one upstream only; they are never counted as model calls.
const (
	PathStats  = "/__sim/stats"  // GET: Stats
	PathConfig = "/__sim/config" // GET: Knobs; POST: partial update, returns Knobs
	PathReset  = "/__sim/reset"  // POST: default knobs, counters zeroed, resumed; returns Stats
	PathPause  = "/__sim/pause"  // POST: hold model calls until resume
	PathResume = "/__sim/resume" // POST: release held model calls
)

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	method := http.MethodPost
	switch r.URL.Path {
	case PathStats:
		method = http.MethodGet
	case PathConfig:
		if r.Method == http.MethodGet {
			method = http.MethodGet
		}
	case PathReset, PathPause, PathResume:
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
			fmt.Sprintf("Unknown control URL: %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
			fmt.Sprintf("%s requires %s, got %s", r.URL.Path, method, r.Method))
		return
	}

	switch r.URL.Path {
	case PathStats:
		writeJSON(w, http.StatusOK, s.Stats())
	case PathConfig:
		if r.Method == http.MethodPost {
			if err := s.updateFromJSON(r.Body); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_config", err.Error())
				return
			}
		}
		writeJSON(w, http.StatusOK, s.Knobs())
	case PathReset:
		s.Reset()
		writeJSON(w, http.StatusOK, s.Stats())
	case PathPause:
		s.Pause()
		writeJSON(w, http.StatusOK, map[string]bool{"paused": true})
	case PathResume:
		s.Resume()
		writeJSON(w, http.StatusOK, map[string]bool{"paused": false})
	}
}

// updateFromJSON applies a partial update: fields absent from the body keep
// their values, unknown fields are rejected (a typo must not silently test
// the happy path), and the result is validated as a whole.
func (s *Server) updateFromJSON(body io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return s.update(func(k *Knobs) error {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(k); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		return nil
	})
}
