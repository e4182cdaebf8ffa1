package modelsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds request bodies; embeddings batches of a few thousand
// strings fit comfortably.
const maxBody = 16 << 20

// ServeHTTP routes model endpoints, the /__sim/ control API, and answers 404
// JSON for anything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	// Deferred so that aborted calls (which panic with http.ErrAbortHandler)
	// are logged too. The log line precedes the end of the call, so once
	// WaitInFlight(0) returns, every call has been logged.
	defer func() {
		s.logRequest(rec, r, start)
		if rec.counted {
			s.end()
		}
	}()
	rec.Header().Set(HeaderModelVersion, s.ModelVersion())

	if strings.HasPrefix(r.URL.Path, "/__sim/") {
		s.serveControl(rec, r)
		return
	}
	if _, ok := s.byPath[r.URL.Path]; !ok {
		writeError(rec, http.StatusNotFound, "invalid_request_error", "unknown_url",
			fmt.Sprintf("Unknown request URL: %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		rec.Header().Set("Allow", http.MethodPost)
		writeError(rec, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
			fmt.Sprintf("%s requires POST, got %s", r.URL.Path, r.Method))
		return
	}
	s.serveModel(rec, r)
}

// serveModel handles one model call in this order: count it; read the body
// and the x-sim-* headers; wait out a pause; read the knobs (consuming
// fail_next); compute the answer (logging embeddings items even if a fault
// follows, since the items did reach the model); add latency; then deliver
// the answer or the fault.
func (s *Server) serveModel(w *recorder, r *http.Request) {
	path := r.URL.Path
	seq := s.begin(path)
	w.counted = true // ServeHTTP ends the call

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large", err.Error())
			return
		}
		s.abort() // the client went away before its body arrived
		return
	}
	if f := s.scripted(); f != nil && f(w, r, body) {
		return
	}
	over, err := parseOverrides(r.Header)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_sim_header", err.Error())
		return
	}
	if ch := s.pausedCh(); ch != nil {
		if !s.wait(w, r, ch, -1) {
			return
		}
	}
	k := s.takeKnobs().forCall(over)
	w.Header().Set(HeaderModelVersion, k.version)
	if k.cacheControl != "" {
		w.Header().Set("Cache-Control", k.cacheControl)
	}
	w.fault = k.fault

	o := answerOpts{
		finishReason: k.finishReason,
		empty:        k.fault == FaultEmpty,
		score:        k.score,
		dims:         s.dims,
	}
	if k.nondeterministic {
		o.nonce, o.created = seq, s.now().Unix()
	}
	rep, answerErr := buildReply(k.version, path, body, o)
	if rep.embedding != nil {
		s.logEmbedding(rep.embedding)
	}

	if k.latency > 0 && !s.wait(w, r, nil, k.latency) {
		return
	}
	switch {
	case k.fault == FaultReset:
		resetConn(w)
		return
	case k.fault == FaultTimeout:
		if s.wait(w, r, nil, s.maxHold) {
			writeError(w, http.StatusGatewayTimeout, "server_error", "timeout", "simulated timeout: held for "+s.maxHold.String())
		}
		return
	case k.status != 0:
		writeStatus(w, k.status)
		return
	case answerErr != nil:
		var re *RequestError
		if errors.As(answerErr, &re) {
			writeRequestError(w, re)
		} else {
			writeError(w, http.StatusInternalServerError, "server_error", "", answerErr.Error())
		}
		return
	}
	if rep.events != nil {
		s.deliverStream(w, r, rep.events, k)
		return
	}
	deliverJSON(w, rep.body, k.fault)
}

// wait blocks until ch closes (ch may be nil) or d passes (d < 0: never).
// It reports false when the call must end instead: the client went away
// (return quietly) or the server is closing (abort the connection).
func (s *Server) wait(w *recorder, r *http.Request, ch <-chan struct{}, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return true
	case <-timeout:
		return true
	case <-r.Context().Done():
		w.note = "client gone"
		return false
	case <-s.done:
		w.note = "server closing"
		panic(http.ErrAbortHandler)
	}
}

func deliverJSON(w *recorder, body []byte, fault Fault) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch fault {
	case FaultMalformed:
		body = malformed(body)
	case FaultTruncate:
		// Promise the whole body, send half, then drop the connection: the
		// client sees an unexpected EOF, never a short but "complete" body.
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2]) //nolint:errcheck // aborting anyway
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	case FaultTrailers:
		h.Set("Trailer", "X-Sim-Trailer")
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck // nothing to do if the client left
		h.Set("X-Sim-Trailer", "1")
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body) //nolint:errcheck // nothing to do if the client left
}

// deliverStream writes SSE events one at a time, flushing each, so a
// cache in front sees a real stream. Truncate stops halfway (before
// [DONE]) and aborts the connection; malformed corrupts the middle event.
func (s *Server) deliverStream(w *recorder, r *http.Request, events [][]byte, k callKnobs) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	n := len(events)
	if k.fault == FaultTruncate {
		n = len(events) / 2
	}
	for i := 0; i < n; i++ {
		ev := events[i]
		if k.fault == FaultMalformed && i == len(events)/2 {
			ev = malformedEvent(ev)
		}
		if i > 0 && k.chunkDelay > 0 && !s.wait(w, r, nil, k.chunkDelay) {
			return
		}
		if _, err := w.Write(ev); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if k.fault == FaultTruncate {
		panic(http.ErrAbortHandler)
	}
}

// malformed cuts a JSON document halfway and appends junk. A strict prefix
// of an object can never be valid JSON, and the junk makes that obvious.
func malformed(body []byte) []byte {
	out := append([]byte(nil), body[:len(body)/2]...)
	return append(out, "#malformed"...)
}

func malformedEvent(ev []byte) []byte {
	data := strings.TrimSuffix(strings.TrimPrefix(string(ev), "data: "), "\n\n")
	return []byte("data: " + string(malformed([]byte(data))) + "\n\n")
}

// resetConn closes the connection with a TCP RST and no response. Where the
// connection cannot be hijacked (HTTP/2), the stream is aborted instead.
func resetConn(w *recorder) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // best effort: a FIN is fine too
	}
	conn.Close()
	w.note = "reset"
}

type errorEnvelope struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // nothing to do if the client left
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	writeJSON(w, status, errorEnvelope{e})
}

func writeRequestError(w http.ResponseWriter, re *RequestError) {
	e := apiError{Message: re.Error(), Type: "invalid_request_error"}
	if re.Param != "" {
		e.Param = &re.Param
	}
	writeJSON(w, http.StatusBadRequest, errorEnvelope{e})
}

// writeStatus answers an injected status the way OpenAI would, including
// Retry-After where OpenAI sends it, so retry logic can be exercised.
func writeStatus(w http.ResponseWriter, status int) {
	typ, code := "server_error", ""
	switch {
	case status == http.StatusUnauthorized:
		typ, code = "invalid_request_error", "invalid_api_key"
	case status == http.StatusForbidden:
		typ, code = "permission_error", ""
	case status == http.StatusNotFound:
		typ, code = "invalid_request_error", "model_not_found"
	case status == http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
		w.Header().Set("Retry-After", "1")
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case status < 500:
		typ = "invalid_request_error"
	}
	writeError(w, status, typ, code,
		fmt.Sprintf("simulated error: %d %s", status, http.StatusText(status)))
}

// recorder remembers the status for the log line; Unwrap keeps Flush and
// Hijack reachable through http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status  int
	fault   Fault
	note    string
	counted bool // a model call: ServeHTTP must call end
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) logRequest(w *recorder, r *http.Request, start time.Time) {
	if s.logf == nil {
		return
	}
	status := "-"
	if w.status != 0 {
		status = strconv.Itoa(w.status)
	}
	var extra strings.Builder
	if w.fault != FaultNone {
		fmt.Fprintf(&extra, " fault=%s", w.fault)
	}
	if w.note != "" {
		fmt.Fprintf(&extra, " (%s)", w.note)
	}
	s.logf("%s %s %s %s version=%s%s", r.Method, r.URL.Path, status,
		time.Since(start).Round(10*time.Microsecond), w.Header().Get(HeaderModelVersion), extra.String())
}
