package wasmhint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// A module assembled by hand: one imported function ("cold", index 0, so
// the module's own functions are counted from 1), one function named as
// a Go runtime panic and one ordinary function, then the bodies under
// test.
const (
	fImported = 0 // env.f, named "runtime.sigpanic"
	fPanic    = 1 // runtime.goPanicIndex: cold
	fWork     = 2 // main.work: not cold
	firstTest = 3
)

func leb(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func sec(id byte, payload []byte) []byte {
	return append(leb([]byte{id}, uint32(len(payload))), payload...)
}

func name(b []byte, s string) []byte { return append(leb(b, uint32(len(s))), s...) }

func module(bodies ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, []byte{1, 0x60, 0, 0})...) // one type: () -> ()
	imp := leb(nil, 1)
	imp = name(imp, "env")
	imp = name(imp, "f")
	imp = append(imp, 0, 0)
	m = append(m, sec(2, imp)...)
	n := uint32(2 + len(bodies))
	fs := leb(nil, n)
	for i := uint32(0); i < n; i++ {
		fs = append(fs, 0)
	}
	m = append(m, sec(3, fs)...)
	code := leb(nil, n)
	for _, own := range [][]byte{{}, {}} { // fPanic, fWork: empty
		code = append(code, wrap(own)...)
	}
	for _, b := range bodies {
		code = append(code, wrap(b)...)
	}
	m = append(m, sec(10, code)...)
	names := leb(nil, n+1)
	for i, s := range append([]string{"runtime.sigpanic", "runtime.goPanicIndex", "main.work"}, testNames(len(bodies))...) {
		names = name(leb(names, uint32(i)), s)
	}
	nameSec := name(nil, "name")
	nameSec = append(nameSec, 1)
	nameSec = append(leb(nameSec, uint32(len(names))), names...)
	return append(m, sec(0, nameSec)...)
}

func wrap(code []byte) []byte {
	b := []byte{1, 1, 0x7f}
	b = append(b, code...)
	b = append(b, 0x0b)
	return append(leb(nil, uint32(len(b))), b...)
}

func testNames(n int) []string {
	var s []string
	for i := 0; i < n; i++ {
		s = append(s, "main.test"+string(rune('a'+i)))
	}
	return s
}

// at is where instruction i of code lies in its body (wrap's three bytes
// of locals first).
func at(i int) int { return 3 + i }

type want struct {
	fn     uint32
	at     int
	likely bool
}

// parse reads the hints section of m (which must be the first custom
// section before the code section).
func parse(t *testing.T, m []byte) []want {
	t.Helper()
	secs, err := sections(m)
	if err != nil {
		t.Fatal(err)
	}
	var got []want
	seen := false
	for _, s := range secs {
		if s.id == 10 && !seen {
			t.Fatal("the code section comes before the hints")
		}
		if s.id != 0 {
			continue
		}
		n, off, err := readName(s.body)
		if err != nil || n != SectionName {
			continue
		}
		if seen {
			t.Fatal("two hint sections")
		}
		seen = true
		r := reader{b: s.body, i: off}
		nf, _ := r.u32()
		last := int64(-1)
		for i := uint32(0); i < nf; i++ {
			f, _ := r.u32()
			if int64(f) <= last {
				t.Fatalf("functions out of order: %d after %d", f, last)
			}
			last = int64(f)
			nh, _ := r.u32()
			prev := -1
			for j := uint32(0); j < nh; j++ {
				o, _ := r.u32()
				size, _ := r.u32()
				v, err := r.byte()
				if err != nil || size != 1 || v > 1 || int(o) <= prev {
					t.Fatalf("bad hint in function %d: offset %d size %d value %d (%v)", f, o, size, v, err)
				}
				prev = int(o)
				got = append(got, want{f, int(o), v == 1})
			}
		}
		if r.i != len(s.body) {
			t.Fatalf("hints section: %d bytes left over", len(s.body)-r.i)
		}
	}
	if !seen {
		t.Fatal("no hints section")
	}
	return got
}

func TestHints(t *testing.T) {
	const (
		if_     = 0x04
		else_   = 0x05
		end     = 0x0b
		call    = 0x10
		br      = 0x0c
		brIf    = 0x0d
		block   = 0x02
		loop    = 0x03
		void    = 0x40
		i32     = 0x41
		lget    = 0x20
		lset    = 0x21
		nop     = 0x01
		brTab   = 0x0e
		return_ = 0x0f
	)
	cases := []struct {
		name string
		code []byte
		want []want // function index filled in below; at: instruction offsets
	}{
		{"a panic in the then-branch: unlikely",
			[]byte{i32, 1, if_, void, call, fPanic, end},
			[]want{{at: at(2)}}},
		{"an imported function named as a panic counts by its index",
			[]byte{i32, 1, if_, void, call, fImported, end},
			[]want{{at: at(2)}}},
		{"ordinary work in the then-branch: no hint",
			[]byte{i32, 1, if_, void, call, fWork, end},
			nil},
		{"a panic in the else-branch: the then-branch is likely",
			[]byte{i32, 1, if_, void, nop, else_, call, fPanic, end},
			[]want{{at: at(2), likely: true}}},
		{"both branches panic: no hint",
			[]byte{i32, 1, if_, void, call, fPanic, else_, call, fPanic, end},
			nil},
		{"work before the panic: no hint",
			[]byte{i32, 1, if_, void, call, fWork, call, fPanic, end},
			nil},
		{"a panic after the if's end, reached when the condition is false: likely",
			[]byte{block, void, i32, 1, if_, void, br, 2 /* out of the block */, end, call, fPanic, end, call, fWork},
			[]want{{at: at(4), likely: true}}},
		{"br_if out of a block past a panic: likely taken",
			[]byte{block, void, i32, 1, brIf, 0, call, fPanic, end, call, fWork},
			[]want{{at: at(4), likely: true}}},
		{"br_if back to a loop: no hint",
			[]byte{loop, void, i32, 1, brIf, 0, call, fPanic, end},
			nil},
		{"a return before the panic: no hint",
			[]byte{i32, 1, if_, void, return_, call, fPanic, end},
			nil},
		{"Go's dispatch: a jump through the resume table to a panic",
			// loop { block { block { local.get 0; br_table 0 1 }
			// work; if { PC = 1; continue the loop } work } panic }
			[]byte{loop, void, block, void, block, void, lget, 0, brTab, 1, 0, 1, end,
				call, fWork, i32, 1, if_, void, i32, 1, lset, 0, br, 2 /* the loop */, end, call, fWork, end,
				call, fPanic, end},
			[]want{{at: at(17)}}},
		{"Go's dispatch to ordinary work, a panic on the other side: likely",
			[]byte{loop, void, block, void, block, void, lget, 0, brTab, 1, 0, 1, end,
				call, fWork, i32, 1, if_, void, i32, 1, lset, 0, br, 2, end, call, fPanic, end,
				call, fWork, end},
			[]want{{at: at(17), likely: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, rep, err := Add(module(c.code))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Skipped != 0 {
				t.Fatalf("skipped %d", rep.Skipped)
			}
			want := c.want
			for i := range want {
				want[i].fn = firstTest
			}
			got := parse(t, m)
			if len(got) != len(want) {
				t.Fatalf("hints %+v, want %+v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("hints %+v, want %+v", got, want)
				}
			}
			if rep.Hints != len(want) {
				t.Fatalf("report %+v, want %d hints", rep, len(want))
			}
		})
	}
}

// The hints are placed before the code section and the module is
// otherwise the same bytes.
func TestAddKeepsTheModule(t *testing.T) {
	in := module([]byte{0x41, 1, 0x04, 0x40, 0x10, fPanic, 0x0b})
	out, _, err := Add(in)
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := sections(out)
	var stripped []byte
	stripped = append(stripped, out[:8]...)
	for _, s := range secs {
		if s.id == 0 {
			if n, _, _ := readName(s.body); n == SectionName {
				continue
			}
		}
		stripped = append(stripped, out[s.start:s.end]...)
	}
	if !bytes.Equal(stripped, in) {
		t.Fatal("the module changed beyond the added section")
	}
	if _, _, err := Add(out); !errors.Is(err, ErrHinted) {
		t.Fatalf("hinting twice: %v, want ErrHinted", err)
	}
}

func TestAddRefusesWhatItCannotRead(t *testing.T) {
	good := module([]byte{0x41, 1, 0x04, 0x40, 0x10, fPanic, 0x0b})
	if _, _, err := Add([]byte("not wasm")); err == nil {
		t.Fatal("accepted a non-module")
	}
	// Without a name section the cold functions cannot be found.
	secs, _ := sections(good)
	noNames := append([]byte{}, good[:secs[len(secs)-1].start]...)
	if _, _, err := Add(noNames); err == nil {
		t.Fatal("accepted a module without names")
	}
	// Every truncation is an error or a module, never a panic.
	for n := 0; n < len(good); n++ {
		_, _, _ = Add(good[:n])
	}
	// An unknown opcode skips its function, the module is still hinted.
	bad := module([]byte{0xff}, []byte{0x41, 1, 0x04, 0x40, 0x10, fPanic, 0x0b})
	_, rep, err := Add(bad)
	if err != nil || rep.Skipped != 1 || rep.Hints != 1 {
		t.Fatalf("unknown opcode: %+v %v, want 1 skipped and 1 hint", rep, err)
	}
}

func TestCold(t *testing.T) {
	for _, n := range []string{"runtime.sigpanic", "runtime.morestack_noctxt", "runtime.goPanicIndex", "runtime.goPanicSliceB",
		"runtime.panicdivide", "runtime.throw", "runtime.printlock", "runtime.fatal", "runtime.gopanic", "runtime.gcWriteBarrier2", "runtime.wbZero", "runtime.wbMove"} {
		if !Cold(n) {
			t.Errorf("%s is not cold", n)
		}
	}
	for _, n := range []string{"runtime.memmove", "runtime.mallocgc", "main.panicky", "main.printf", "runtime.growslice"} {
		if Cold(n) {
			t.Errorf("%s is cold", n)
		}
	}
}

func TestVerify(t *testing.T) {
	m, _, err := Add(module([]byte{0x41, 1, 0x04, 0x40, 0x10, fPanic, 0x0b}, []byte{0x02, 0x40, 0x41, 1, 0x0d, 0, 0x10, fPanic, 0x0b}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Verify(m); err != nil || n != 2 {
		t.Fatalf("Verify: %d, %v; want 2 hints", n, err)
	}
	// A hint moved off its branch (onto the i32.const before it) is caught.
	i := bytes.Index(m, []byte(SectionName)) + len(SectionName)
	// Two functions; the first: function 3, one hint, on the if.
	if m[i] != 2 || m[i+1] != firstTest || m[i+2] != 1 || m[i+3] != byte(at(2)) {
		t.Fatalf("unexpected section layout % x", m[i:i+8])
	}
	bad := append([]byte{}, m...)
	bad[i+3] = byte(at(0))
	if _, err := Verify(bad); err == nil {
		t.Fatal("a hint on an i32.const passed")
	}
	if _, err := Verify(module([]byte{0x01})); err == nil {
		t.Fatal("a module without hints passed")
	}
}

// File hints a module once: a second run (go build left a current output
// as it was) leaves it alone.
func TestFileIsIdempotent(t *testing.T) {
	path := t.TempDir() + "/m.wasm"
	if err := os.WriteFile(path, module([]byte{0x41, 1, 0x04, 0x40, 0x10, fPanic, 0x0b}), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := FileReport(path)
	if err != nil || rep.Hints != 1 || rep.Already {
		t.Fatalf("first: %+v %v", rep, err)
	}
	first, _ := os.ReadFile(path)
	rep, err = FileReport(path)
	if err != nil || !rep.Already {
		t.Fatalf("second: %+v %v", rep, err)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Fatal("the second run changed the module")
	}
	if _, err := Verify(second); err != nil {
		t.Fatal(err)
	}
}
