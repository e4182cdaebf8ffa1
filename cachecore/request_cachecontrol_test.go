package cachecore

import "testing"

// A client's Cache-Control: no-store counts on any of its header lines,
// as a response's does (TestAdmitSecondCacheControlLineNoStore).
func TestRequestSecondCacheControlLineNoStore(t *testing.T) {
	h := append(append([][2]string{}, alice...), [2]string{"cache-control", "max-stale=0"}, [2]string{"cache-control", "no-store"})
	if r := storeVerdict(t, testConfig, "chat", h, chatRequest("my medical history"), jsonCT, chatResponse("diagnosis")); r == ReasonNone {
		t.Fatalf("request with `Cache-Control: no-store` on its second line: answer stored")
	}
}
