//go:build !wasip1

package proxywasm

import (
	"testing"

	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// Review Z121. An HTTP call is owned by the root context of the context it
// is made from (cpp-host http_call: contextOrEffectiveContext()->
// root_context()), and its answer comes to that root's
// proxy_on_http_call_response. The binding files the callback under
// currentRoot, which proxy_on_delete does not set when the stream's end
// already ran (at proxy_on_log): it is whichever context's callback came
// last — in a VM with two root contexts (a reload's overlap, or one
// filter configuration on two listeners) another root's. A call made from
// that stream's OnHttpStreamDeleted (or from the plugin's
// OnHttpStreamBroken, which on_delete calls for a broken stream) is filed
// under the other root, and its answer, delivered to the stream's own
// root, finds no callback: it is dropped, and the other root's call table
// keeps the entry for good.
func TestCallFromADeletedStreamIsAnsweredOnItsOwnRoot(t *testing.T) {
	oldVM, oldRoots, oldStreams := vmContext, roots, streams
	t.Cleanup(func() { vmContext, roots, streams = oldVM, oldRoots, oldStreams })
	roots, streams = contextTable[rootState]{}, contextTable[streamState]{}
	answered := 0
	vmContext = callingVM{onAnswer: func() { answered++ }}
	onContextCreate(1, 0) // the first configuration's root
	onContextCreate(3, 0) // a second root in the same VM
	onContextCreate(2, 1) // a stream of root 1
	onContextCreate(4, 3) // a stream of root 3
	onRequestHeaders(2, 1, 1)
	onLog(2)                  // stream 2's end runs here
	onRequestHeaders(4, 1, 1) // another root's stream runs a callback
	onDelete(2)               // stream 2's deletion makes a call (token 8, owned by root 1)
	onHTTPCallResponse(1, 8, 1, 0, 0)
	if answered != 1 {
		r1, r3 := len(roots.get(1).calls), len(roots.get(3).calls)
		t.Fatalf("the call made in stream 2's deletion was answered %d times, want 1 (calls filed under root 1: %d, under root 3: %d)", answered, r1, r3)
	}
}

type callingVM struct{ onAnswer func() }

func (callingVM) OnVMStart(int) types.OnVMStartStatus { return types.OnVMStartStatusOK }
func (v callingVM) NewPluginContext(uint32) types.PluginContext {
	return callingPlugin{onAnswer: v.onAnswer}
}

type callingPlugin struct {
	types.DefaultPluginContext
	onAnswer func()
}

func (p callingPlugin) NewHttpContext(id uint32) types.HttpContext {
	return &callingStream{id: id, onAnswer: p.onAnswer}
}

// callingStream makes an HTTP call when it is deleted, as DispatchHttpCall
// does once the host gave it a token (proxy_http_call itself needs a host).
type callingStream struct {
	types.DefaultHttpContext
	id       uint32
	onAnswer func()
}

func (s *callingStream) OnHttpStreamDeleted() {
	if s.id == 2 {
		registerHTTPCall(8, func(int, int, int) { s.onAnswer() })
	}
}
