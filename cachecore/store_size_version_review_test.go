package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// Review Z116 (follow-up of 4b83b7b, Store's size check moved before
// prepareStore): an answer whose entry is over max_entry_bytes (its body
// alone is not) now notes its version through noteVersion, which reads a
// route's body_path from the raw event-stream bytes whenever the route also
// names a header (versionSource is used only when header is ""). gjson sees
// only the first event's JSON there; an Azure OpenAI stream opens with a
// prompt_filter_results chunk that has no system_fingerprint. Before the
// change, prepareStore switched the version with adm.Version, read from the
// stream's assembly, which has it. Now the upstream's new version goes
// unnoticed and the previous version's entries stay served.
func TestZ116TooLargeStreamOnHeaderAndBodyPathRouteSwitchesVersion(t *testing.T) {
	env := newEnv(t, `{"max_request_bytes":16384,"store":{"max_entry_bytes":4096},"routes":[
		{"name":"fp","kind":"chat","path_exact":"/v1/fp","model_version":{"header":"x-model-version","body_path":"system_fingerprint"}}]}`)
	req, _ := env.lookup("fp", bob, streamReq("A"))
	env.fill(req, sseCT, fpStream("fp_v1", "v1's answer", "stop"), 10)
	if _, d := env.lookup("fp", bob, streamReq("A")); d != Serve {
		t.Fatalf("setup: v1's stream not served: %v", d)
	}

	// A request whose key is long: its entry is over max_entry_bytes,
	// though the streamed answer alone is well within it.
	other, d := env.lookup("fp", alice, streamReq(strings.Repeat("q", 3500)))
	if other.Bypassed() || d != Forward {
		t.Fatalf("setup: %v (%s)", d, other.Reason)
	}
	ans := fpStream("fp_v2", "v2's answer", "stop")
	if len(ans) > 4096 {
		t.Fatalf("setup: answer of %d bytes", len(ans))
	}
	st := env.cache.AdmitAndStore(other, 200, sseCT, []byte(ans), OriginUpstream, 10)
	if st.Reason != ReasonTooLarge {
		t.Fatalf("setup: the v2 stream was not refused as too large but %q", st.Reason)
	}
	if !st.Result.VersionChanged {
		t.Errorf("the too-large stream reported system_fingerprint fp_v2 (its assembly has it), yet no version switch was noted: %+v", st.Result)
	}
	if r, d := env.lookup("fp", bob, streamReq("A")); d == Serve {
		if _, _, body := env.cache.HitResponse(r); bytes.Contains(body, []byte("v1's answer")) {
			t.Errorf("the upstream now streams fp_v2, yet fp_v1's stream is still served")
		}
	}
}

// maxVersionLen "bounds a reported version where it is shown (logs)":
// prepareStore cuts StoreResult.Version to it (the filter logs VersionNote
// with it on every switch). Since 4b83b7b an answer whose entry is over
// max_entry_bytes notes its switch through noteVersion, which returns the
// version whole: a switch by such an answer logs the whole reported string
// (up to a header's 60 KiB, or a body_path value up to max_entry_bytes),
// where the same switch by a stored answer, and by this very answer before
// the change, showed 64 bytes and "…".
func TestZ116TooLargeAnswerVersionShownBounded(t *testing.T) {
	env := newEnv(t, `{"max_request_bytes":16384,"store":{"max_entry_bytes":4096},"routes":[
		{"name":"versioned","kind":"chat","path_exact":"/v1/versioned","model_version":{"header":"x-model-version"}}]}`)
	v := func(version string) [][2]string {
		return hdr("content-type", "application/json", "x-model-version", version)
	}
	req, _ := env.lookup("versioned", alice, chatRequest("A"))
	env.fill(req, v("v1"), chatResponse("v1's answer"), 10)

	long := strings.Repeat("v", 2000)
	other, _ := env.lookup("versioned", alice, chatRequest(strings.Repeat("q", 3000)))
	st := env.cache.AdmitAndStore(other, 200, v(long), []byte(chatResponse("v2's answer")), OriginUpstream, 10)
	if st.Reason != ReasonTooLarge || !st.Result.VersionChanged {
		t.Fatalf("setup: %q, %+v", st.Reason, st.Result.VersionChanged)
	}
	if n := len(st.Result.Version); n > maxVersionLen+len("…") {
		t.Errorf("the switch's version to show is %d bytes, over maxVersionLen %d (a stored answer's is cut to it)", n, maxVersionLen)
	}
}
