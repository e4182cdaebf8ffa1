//go:build !wasip1

package proxywasm

import (
	"fmt"
	"slices"
	"testing"

	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// Every stream callback reaches the plugin's stream with its arguments and
// answers the host with the stream's action; the stream's end runs once,
// on the first of on_log, on_done and on_delete, whichever the host sends.
func TestStreamCallbacksReachTheStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		ends []func(uint32)
	}{
		{"log, done, delete", []func(uint32){onLog, func(id uint32) { onDone(id) }, onDelete}},
		{"done, delete", []func(uint32){func(id uint32) { onDone(id) }, onDelete}},
		{"delete only", []func(uint32){onDelete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := startRecordingVM(t)
			onContextCreate(2, 1)
			steps := []struct {
				call func() types.Action
				want types.Action
			}{
				{func() types.Action { return onRequestHeaders(2, 7, 0) }, types.ActionPause},
				{func() types.Action { return onRequestBody(2, 100, 1) }, types.ActionContinue},
				{func() types.Action { return onRequestTrailers(2, 3) }, types.ActionPause},
				{func() types.Action { return onResponseHeaders(2, 5, 1) }, types.ActionContinue},
				{func() types.Action { return onResponseBody(2, 50, 0) }, types.ActionPauseWatermark},
				{func() types.Action { return onResponseTrailers(2, 1) }, types.ActionContinue},
			}
			for i, st := range steps {
				if got := st.call(); got != st.want {
					t.Fatalf("callback %d answered %d, want %d", i, got, st.want)
				}
			}
			for _, end := range tc.ends {
				end(2)
			}
			want := []string{"request headers 7 false", "request body 100 true", "request trailers 3",
				"response headers 5 true", "response body 50 false", "response trailers 1", "done", "deleted"}
			if !slices.Equal(rec.calls, want) {
				t.Fatalf("the stream saw %q, want %q", rec.calls, want)
			}
			if streams.get(2) != nil {
				t.Fatal("the stream's state outlived on_delete")
			}
		})
	}
}

// startRecordingVM installs a plugin whose streams record their callbacks,
// with root context 1 started; the binding's state is restored after t.
func startRecordingVM(t *testing.T) *recordingStream {
	t.Helper()
	oldVM, oldRoots, oldStreams := vmContext, roots, streams
	t.Cleanup(func() { vmContext, roots, streams = oldVM, oldRoots, oldStreams })
	roots, streams = contextTable[rootState]{}, contextTable[streamState]{}
	rec := &recordingStream{}
	vmContext = recordingVM{rec}
	onContextCreate(1, 0)
	return rec
}

type recordingVM struct{ s *recordingStream }

func (recordingVM) OnVMStart(int) types.OnVMStartStatus { return types.OnVMStartStatusOK }
func (v recordingVM) NewPluginContext(uint32) types.PluginContext {
	return recordingPlugin{s: v.s}
}

type recordingPlugin struct {
	types.DefaultPluginContext
	s *recordingStream
}

func (p recordingPlugin) NewHttpContext(uint32) types.HttpContext { return p.s }

// recordingStream answers each callback with its own action, so that a
// callback routed to another method shows.
type recordingStream struct{ calls []string }

func (s *recordingStream) note(format string, args ...any) {
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

func (s *recordingStream) OnHttpRequestHeaders(n int, eos bool) types.Action {
	s.note("request headers %d %v", n, eos)
	return types.ActionPause
}

func (s *recordingStream) OnHttpRequestBody(n int, eos bool) types.Action {
	s.note("request body %d %v", n, eos)
	return types.ActionContinue
}

func (s *recordingStream) OnHttpRequestTrailers(n int) types.Action {
	s.note("request trailers %d", n)
	return types.ActionPause
}

func (s *recordingStream) OnHttpResponseHeaders(n int, eos bool) types.Action {
	s.note("response headers %d %v", n, eos)
	return types.ActionContinue
}

func (s *recordingStream) OnHttpResponseBody(n int, eos bool) types.Action {
	s.note("response body %d %v", n, eos)
	return types.ActionPauseWatermark
}

func (s *recordingStream) OnHttpResponseTrailers(n int) types.Action {
	s.note("response trailers %d", n)
	return types.ActionContinue
}

func (s *recordingStream) OnHttpStreamDone()    { s.note("done") }
func (s *recordingStream) OnHttpStreamDeleted() { s.note("deleted") }
