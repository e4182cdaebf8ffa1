package modelsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzModelEndpoints feeds arbitrary bodies to every endpoint: the
// simulator must never panic, must answer 200 or 400, and its 200 answers
// must be what ExpectedBody predicts. Run with
// go test -fuzz FuzzModelEndpoints ./e2e/modelsim/.
func FuzzModelEndpoints(f *testing.F) {
	for _, seed := range []struct {
		path byte
		body string
	}{
		{0, chatBody}, {0, chatStream}, {0, weatherReq}, {0, `{"model":"m","n":2,"max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"é"}]}]}`},
		{1, complBody}, {1, `{"model":"m","prompt":[[1,2],[3]],"stream":true}`},
		{2, embedBody}, {2, `{"model":"m","input":[1,2],"encoding_format":"base64","dimensions":3}`},
		{3, classBody}, {3, `{"model":"m","input":"[score=0.02]"}`},
		{0, `{}`}, {2, `{"model":"m","input":[[]]}`}, {1, `null`}, {3, `{"model":1}`},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	s := New(Options{})
	f.Fuzz(func(t *testing.T, p byte, body []byte) {
		path := ModelPaths[int(p)%len(ModelPaths)]
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			want, err := ExpectedBody(DefaultModelVersion, path, body)
			if err != nil || !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("200 answer %q differs from ExpectedBody %q (%v)", rec.Body.Bytes(), want, err)
			}
			if rec.Header().Get("Content-Type") == "application/json" && !json.Valid(want) {
				t.Fatalf("invalid JSON answer %q", want)
			}
		case http.StatusBadRequest:
			var e errorEnvelope
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
				t.Fatalf("400 body %q", rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
