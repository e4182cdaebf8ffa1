package cachecore

import (
	"strings"
	"testing"
)

// webdis relays a Redis error reply to a command as JSON as
// {"LRANGE":[false,"<message>"]} (checked on webdis with a real Redis): a
// Redis loading its dataset after a restart answers every command with
// LOADING for as long as that takes, one whose password was rotated with
// NOAUTH, a busy script with BUSY. Such an answer to a purge-log read is an
// L2 error (README, Failure: "answering garbage: the request goes on as if
// there were no L2"; l2.error counts "a purge-log read answered with
// garbage"): the log was not trimmed, so the VM's L1 must stay, and once
// Redis answers again the VM reads on from where it was.
func TestL2PurgeLogErrorReplyIsAnErrorNotATrimmedLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int // purge-log records before the error (the VM's cursor)
		reply   string
	}{
		{"loading, log read before", 1, `{"LRANGE":[false,"LOADING Redis is loading the dataset in memory"]}`},
		{"noauth, log read before", 2, `{"LRANGE":[false,"NOAUTH Authentication required."]}`},
		{"loading, empty log", 0, `{"LRANGE":[false,"LOADING Redis is loading the dataset in memory"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.step(m.p[1].L2Tick()) // B's cursor: where the log ends
			for i := 0; i < tc.records; i++ {
				res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"other"}`), "")
				m.step(res.L2.Done(m.wd.do(res.L2)))
			}
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B reads them
			m.copyToBsL1()
			freed := m.freed

			m.clock.Advance(DefaultL2SyncInterval)
			acts := m.p[1].L2Tick()
			if len(acts) != 1 || acts[0].Kind != ActDispatch {
				t.Fatalf("no log read: %v", acts)
			}
			got, _ := m.step(acts[0].Call.Done(CallResult{Status: 200, Headers: [][2]string{{":status", "200"}}, Body: []byte(tc.reply)}))
			if !strings.Contains(got, "l2.error") || m.freed != freed {
				t.Errorf("a Redis error reply to the log read: %q, %d entries dropped from L1", got, m.freed-freed)
			}
			// Redis answers again, the log as it was.
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if m.freed != freed {
				t.Errorf("B dropped %d L1 entries after a log read answered with an error, the log never trimmed", m.freed-freed)
			}
			if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
				t.Fatalf("B's L1 after the error: %q", cs)
			}
		})
	}
}
