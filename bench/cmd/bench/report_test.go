package main

import (
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\nintro\n\n" + benchBegin + "\nold table\n" + benchEnd + "\n\nprose\n"
	got, ok := replaceSection(doc, "new table\n")
	if !ok {
		t.Fatal("markers not found")
	}
	want := "# B\n\nintro\n\n" + benchBegin + "\n\nnew table\n" + benchEnd + "\n\nprose\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	again, _ := replaceSection(got, "newer\n")
	if strings.Contains(again, "new table") || !strings.Contains(again, "newer") || !strings.HasSuffix(again, "prose\n") {
		t.Fatalf("second replacement: %q", again)
	}
	if _, ok := replaceSection("no markers", "x"); ok {
		t.Fatal("replaced without markers")
	}
}

func TestParseBench(t *testing.T) {
	out := "goos: wasip1\nBenchmarkHitResponse \t 1000000\t      880.5 ns/op\t     176 B/op\t       5 allocs/op\n" +
		"BenchmarkCanonicalize-2   \t  200000\t      1700 ns/op\t 951.2 MB/s\t       0 B/op\t       0 allocs/op\nPASS\n"
	ns, mem := parseBench(out)
	if ns["BenchmarkHitResponse"][0] != 880.5 || mem["BenchmarkHitResponse"] != [2]float64{176, 5} {
		t.Fatalf("HitResponse: %v %v", ns, mem)
	}
	if ns["BenchmarkCanonicalize"][0] != 1700 || mem["BenchmarkCanonicalize"] != [2]float64{0, 0} {
		t.Fatalf("Canonicalize: %v %v", ns, mem)
	}
}

func TestChatPayloadSizes(t *testing.T) {
	for _, n := range []int{1024, 16384} {
		if got := len(chatPayload(n)); got != n {
			t.Fatalf("chatPayload(%d) is %d bytes", n, got)
		}
	}
}

func TestClusters(t *testing.T) {
	var calls []call
	for _, ms := range []int{0, 5, 2100, 2102, 4300} {
		calls = append(calls, call{At: t0().Add(msDur(ms))})
	}
	if n := len(clusters(calls, swrTTL/2)); n != 3 {
		t.Fatalf("%d clusters, want 3", n)
	}
}

func t0() time.Time              { return time.Unix(1767225600, 0) }
func msDur(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
