// Package wasmhint adds a WebAssembly branch-hint section
// ("metadata.code.branch_hint", the Branch Hinting proposal, part of the
// standard since 2025 and on by default in V8 since 13.7) to a module built
// by Go's wasm port, marking as unlikely each branch into code that only
// panics, grows the goroutine stack or runs the collector's write barrier.
//
// Go's wasm code checks nil pointers, bounds and the stack's size with
// explicit branches whose cold side is inline in the hot code: V8 lays
// the code out in the order it is written, so a request's path is spread
// over cache lines partly filled with code that never runs. With the hints,
// V8's optimising compiler moves those blocks out of line (deferred
// code). Hints are metadata: an engine may ignore them, and the module's
// behaviour is the same either way.
package wasmhint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// SectionName is the custom section the hints are written to.
const SectionName = "metadata.code.branch_hint"

// Report says what Add did.
type Report struct {
	Functions int  // function bodies in the module
	Hinted    int  // functions with at least one hint
	Hints     int  // branches hinted
	Likely    int  // of which hinted likely (the other way into cold code)
	Skipped   int  // bodies with an instruction the decoder does not know (left unhinted)
	Already   bool // File: the module had its hints already
}

func (r Report) String() string {
	if r.Already {
		return "already hinted"
	}
	return fmt.Sprintf("%d branches hinted (%d likely) in %d of %d functions (%d skipped)", r.Hints, r.Likely, r.Hinted, r.Functions, r.Skipped)
}

// ErrHinted: the module already has a branch-hint section.
var ErrHinted = errors.New("wasmhint: the module already has a " + SectionName + " section")

// File adds the hints to the module at path, in place. A module that
// has them already is left as it is: go build does not rewrite an output
// whose build ID is current, so a module hinted after an earlier build of
// the same code is met again.
func File(path string) error {
	_, err := FileReport(path)
	return err
}

// FileReport is File, with what it did.
func FileReport(path string) (Report, error) {
	m, err := os.ReadFile(path)
	if err != nil {
		return Report{}, err
	}
	m, rep, err := Add(m)
	if errors.Is(err, ErrHinted) {
		return Report{Already: true}, nil
	}
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, os.WriteFile(path, m, 0o644)
}

// Cold reports whether a call to the function named name marks the branch
// that leads to it as unlikely: Go's runtime entries for panics (and the
// runtime's prints before a crash), stack growth and write barriers.
func Cold(name string) bool {
	n, ok := strings.CutPrefix(name, "runtime.")
	if !ok {
		return false
	}
	switch {
	case n == "sigpanic", n == "morestack", n == "morestack_noctxt", n == "throw", n == "fatal", n == "gopanic",
		n == "wbZero", n == "wbMove",
		strings.HasPrefix(n, "goPanic"), strings.HasPrefix(n, "panic"), strings.HasPrefix(n, "gcWriteBarrier"),
		strings.HasPrefix(n, "print"): // the runtime prints on its way to a crash
		return true
	}
	return false
}

type section struct {
	id         byte
	start, end int // the whole section, header included
	body       []byte
}

// Add returns module with a branch-hint section placed before its code
// section (where engines read it): each if and br_if one side of which
// runs straight into a call to a Cold function, and the other side does
// not, is hinted so that the cold side is the unlikely one (hints).
func Add(module []byte) ([]byte, Report, error) {
	var rep Report
	secs, err := sections(module)
	if err != nil {
		return nil, rep, err
	}
	var imports, names, code *section
	for i := range secs {
		s := &secs[i]
		switch s.id {
		case 0:
			n, _, err := readName(s.body)
			if err != nil {
				return nil, rep, err
			}
			switch n {
			case SectionName:
				return nil, rep, ErrHinted
			case "name":
				names = s
			}
		case 2:
			imports = s
		case 10:
			code = s
		}
	}
	if code == nil {
		return nil, rep, errors.New("wasmhint: no code section")
	}
	if names == nil {
		return nil, rep, errors.New("wasmhint: no name section (built with -ldflags=-s?): cold functions are found by name")
	}
	nImports, err := countFuncImports(imports)
	if err != nil {
		return nil, rep, err
	}
	fnames, err := functionNames(names.body)
	if err != nil {
		return nil, rep, err
	}
	cold := map[uint32]bool{}
	for idx, n := range fnames {
		if Cold(n) {
			cold[idx] = true
		}
	}
	var out []byte // the section's vec(codemetadatafunc)
	bodies, err := codeBodies(code.body)
	if err != nil {
		return nil, rep, err
	}
	rep.Functions = len(bodies)
	for i, body := range bodies {
		hs, err := hints(body, cold)
		if err != nil {
			rep.Skipped++
			continue
		}
		if len(hs) == 0 {
			continue
		}
		rep.Hinted++
		rep.Hints += len(hs)
		out = binary.AppendUvarint(out, uint64(nImports)+uint64(i))
		out = binary.AppendUvarint(out, uint64(len(hs)))
		for _, h := range hs {
			out = binary.AppendUvarint(out, uint64(h.at))
			v := byte(0) // unlikely
			if h.likely {
				v = 1
				rep.Likely++
			}
			out = append(out, 1, v)
		}
	}
	payload := appendName(nil, SectionName)
	payload = binary.AppendUvarint(payload, uint64(rep.Hinted))
	payload = append(payload, out...)
	res := make([]byte, 0, len(module)+len(payload)+8)
	res = append(res, module[:code.start]...)
	res = append(res, 0)
	res = binary.AppendUvarint(res, uint64(len(payload)))
	res = append(res, payload...)
	res = append(res, module[code.start:]...)
	return res, rep, nil
}

// CodeBodies returns the module's function bodies (locals and code) and
// the function index of the first: imported functions come first in the
// index space and have none.
func CodeBodies(module []byte) (first uint32, bodies [][]byte, err error) {
	secs, err := sections(module)
	if err != nil {
		return 0, nil, err
	}
	var code *section
	for i := range secs {
		switch s := &secs[i]; s.id {
		case 2:
			if first, err = countFuncImports(s); err != nil {
				return 0, nil, err
			}
		case 10:
			code = s
		}
	}
	if code == nil {
		return 0, nil, errors.New("wasmhint: no code section")
	}
	bodies, err = codeBodies(code.body)
	return first, bodies, err
}

// codeBodies splits a code section into its function bodies.
func codeBodies(code []byte) ([][]byte, error) {
	r := reader{b: code}
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	bodies := make([][]byte, 0, min(int(count), len(code))) // a count is no larger than its bytes
	for i := uint32(0); i < count; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if r.i+int(size) > len(code) {
			return nil, errors.New("wasmhint: function body past the code section")
		}
		bodies = append(bodies, code[r.i:r.i+int(size)])
		r.i += int(size)
	}
	return bodies, nil
}

func sections(m []byte) ([]section, error) {
	if len(m) < 8 || !bytes.Equal(m[:4], []byte("\x00asm")) || binary.LittleEndian.Uint32(m[4:]) != 1 {
		return nil, errors.New("wasmhint: not a WebAssembly module (version 1)")
	}
	r := reader{b: m, i: 8}
	var out []section
	for r.i < len(m) {
		start := r.i
		id := m[r.i]
		r.i++
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		if r.i+int(n) > len(m) {
			return nil, errors.New("wasmhint: section past the end of the module")
		}
		out = append(out, section{id: id, start: start, end: r.i + int(n), body: m[r.i : r.i+int(n)]})
		r.i += int(n)
	}
	return out, nil
}

func countFuncImports(s *section) (uint32, error) {
	if s == nil {
		return 0, nil
	}
	r := reader{b: s.body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var funcs uint32
	for i := uint32(0); i < n; i++ {
		for j := 0; j < 2; j++ { // module, name
			l, err := r.u32()
			if err != nil {
				return 0, err
			}
			if err := r.skip(int(l)); err != nil {
				return 0, err
			}
		}
		kind, err := r.byte()
		if err != nil {
			return 0, err
		}
		switch kind {
		case 0: // func: type index
			funcs++
			_, err = r.u32()
		case 1: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 2: // memory: limits
			err = r.limits()
		case 3: // global: valtype, mut
			err = r.skip(2)
		default:
			err = fmt.Errorf("wasmhint: unknown import kind %d", kind)
		}
		if err != nil {
			return 0, err
		}
	}
	return funcs, nil
}

// functionNames reads the name section's function names (subsection 1).
func functionNames(b []byte) (map[uint32]string, error) {
	_, n, err := readName(b)
	if err != nil {
		return nil, err
	}
	r := reader{b: b, i: n}
	for r.i < len(b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if r.i+int(size) > len(b) {
			return nil, errors.New("wasmhint: name subsection past its section")
		}
		if id != 1 {
			r.i += int(size)
			continue
		}
		sub := reader{b: b[r.i : r.i+int(size)]}
		count, err := sub.u32()
		if err != nil {
			return nil, err
		}
		names := make(map[uint32]string, count)
		for i := uint32(0); i < count; i++ {
			idx, err := sub.u32()
			if err != nil {
				return nil, err
			}
			l, err := sub.u32()
			if err != nil {
				return nil, err
			}
			if sub.i+int(l) > len(sub.b) {
				return nil, errors.New("wasmhint: function name past its subsection")
			}
			names[idx] = string(sub.b[sub.i : sub.i+int(l)])
			sub.i += int(l)
		}
		return names, nil
	}
	return nil, errors.New("wasmhint: the name section has no function names")
}

// readName reads a custom section's name; n is where its payload starts.
func readName(b []byte) (name string, n int, err error) {
	r := reader{b: b}
	l, err := r.u32()
	if err != nil {
		return "", 0, err
	}
	if r.i+int(l) > len(b) {
		return "", 0, errors.New("wasmhint: custom section name past its section")
	}
	return string(b[r.i : r.i+int(l)]), r.i + int(l), nil
}

func appendName(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

type reader struct {
	b []byte
	i int
}

var errShort = errors.New("wasmhint: truncated")

func (r *reader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) skip(n int) error {
	if n < 0 || r.i+n > len(r.b) {
		return errShort
	}
	r.i += n
	return nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("wasmhint: LEB128 too long")
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *reader) sleb(max int) error {
	for k := 0; k < max; k++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("wasmhint: LEB128 too long")
}

func (r *reader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag&1 != 0 {
		_, err = r.u32()
	}
	return err
}

// instr is one decoded instruction of a function body.
type instr struct {
	op  byte
	at  int    // offset from the body's start (its locals included)
	imm uint32 // call: the function; br, br_if: the label; i32.const: the value (if small); local.set: the local
	// For block, loop and if: the index of the matching end (and, for an
	// if, of its else, or -1). For br and br_if: the index of the
	// construct the label names.
	end, els, target int
	table            []uint32 // br_table: the labels, the default last
}

// decode reads a function body's instructions and matches its constructs.
func decode(body []byte) ([]instr, error) {
	r := reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ { // locals: count, type
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	var ins []instr
	var open []int // indices of the open block, loop and if instructions
	label := func(depth uint32) (int, error) {
		if int(depth) >= len(open) {
			return -1, nil // the function's own label: a return
		}
		return open[len(open)-1-int(depth)], nil
	}
	for r.i < len(body) {
		in := instr{at: r.i, end: -1, els: -1, target: -1}
		in.op, _ = r.byte()
		var err error
		switch op := in.op; {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			err = blockType(&r)
			open = append(open, len(ins))
		case op == 0x05: // else
			if len(open) == 0 || ins[open[len(open)-1]].op != 0x04 {
				return nil, errors.New("wasmhint: else outside if")
			}
			ins[open[len(open)-1]].els = len(ins)
		case op == 0x0b: // end
			if len(open) > 0 {
				ins[open[len(open)-1]].end = len(ins)
				open = open[:len(open)-1]
			}
		case op == 0x0c || op == 0x0d: // br, br_if
			if in.imm, err = r.u32(); err == nil {
				in.target, err = label(in.imm)
			}
		case op == 0x0e: // br_table
			var c uint32
			if c, err = r.u32(); err == nil {
				for k := uint32(0); k <= c && err == nil; k++ {
					var l uint32
					l, err = r.u32()
					in.table = append(in.table, l)
				}
			}
			// Resolved to constructs now, while the labels are open.
			for k, l := range in.table {
				t, _ := label(l)
				in.table[k] = uint32(t + 1) // 0: the function's label
			}
		case op == 0x10: // call
			in.imm, err = r.u32()
		case op == 0x11: // call_indirect: type, table
			if _, err = r.u32(); err == nil {
				_, err = r.u32()
			}
		case op == 0x00 || op == 0x01 || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1:
		case op == 0x1c: // select t*
			var c uint32
			if c, err = r.u32(); err == nil {
				err = r.skip(int(c))
			}
		case op >= 0x20 && op <= 0x26: // locals, globals, tables
			in.imm, err = r.u32()
		case op >= 0x28 && op <= 0x3e: // loads, stores: memarg
			if _, err = r.u32(); err == nil {
				_, err = r.u32()
			}
		case op == 0x3f || op == 0x40: // memory.size, memory.grow
			err = r.skip(1)
		case op == 0x41:
			start := r.i
			err = r.sleb(5)
			if err == nil && r.i == start+1 && body[start] < 0x40 { // 0..63
				in.imm = uint32(body[start])
			} else if err == nil && r.i == start+2 && body[start+1] < 0x40 {
				in.imm = uint32(body[start]&0x7f) | uint32(body[start+1])<<7
			} else {
				in.imm = ^uint32(0)
			}
		case op == 0x42:
			err = r.sleb(10)
		case op == 0x43:
			err = r.skip(4)
		case op == 0x44:
			err = r.skip(8)
		case op >= 0x45 && op <= 0xc4: // numeric, conversions, sign extension
		case op == 0xd0: // ref.null t
			err = r.skip(1)
		case op == 0xd2: // ref.func
			_, err = r.u32()
		case op == 0xfc:
			err = prefixed(&r)
		default:
			err = fmt.Errorf("wasmhint: unknown opcode %#x at %d", op, in.at)
		}
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	if len(open) != 0 {
		return nil, errors.New("wasmhint: function body ends inside a block")
	}
	return ins, nil
}

func prefixed(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // saturating truncations
		return nil
	case sub == 8: // memory.init data, mem
		if _, err := r.u32(); err != nil {
			return err
		}
		return r.skip(1)
	case sub == 9 || sub == 13 || sub == 15 || sub == 16 || sub == 17: // data.drop, elem.drop, table.grow/size/fill
		_, err := r.u32()
		return err
	case sub == 10: // memory.copy
		return r.skip(2)
	case sub == 11: // memory.fill
		return r.skip(1)
	case sub == 12 || sub == 14: // table.init, table.copy
		if _, err := r.u32(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	}
	return fmt.Errorf("wasmhint: unknown opcode 0xfc %d", sub)
}

// maxWalk bounds how far a path is followed looking for a cold call.
const maxWalk = 400

// coldPath reports whether execution from instruction i, while it runs
// straight on (falling out of blocks, following unconditional branches
// and Go's jumps through its resume table), reaches a cold call before
// anything that decides or does work elsewhere: a conditional branch, a
// call to another function, a return.
func coldPath(ins []instr, i int, cold map[uint32]bool) bool {
	pcLocal, pc := -1, -1 // the last i32.const k; local.set l seen
	for steps := 0; steps < maxWalk && i >= 0 && i < len(ins); steps++ {
		in := &ins[i]
		switch in.op {
		case 0x10:
			return cold[in.imm]
		case 0x04, 0x0d, 0x0f, 0x00, 0x11:
			return false
		case 0x05: // else, reached from the then-branch: past the if
			i = endOf(ins, i) + 1
			continue
		case 0x0c: // br
			t := in.target
			if t < 0 {
				return false
			}
			if ins[t].op == 0x03 { // a loop: Go's resume table dispatches on its PC local
				i = dispatch(ins, t, pcLocal, pc)
				continue
			}
			i = ins[t].end + 1
			continue
		case 0x0e: // br_table: only Go's dispatch, followed through dispatch
			return false
		case 0x21: // local.set
			if i > 0 && ins[i-1].op == 0x41 && ins[i-1].imm != ^uint32(0) {
				pcLocal, pc = int(in.imm), int(ins[i-1].imm)
			}
		}
		i++
	}
	return false
}

// endOf returns the index of the end of the if whose else is at i.
func endOf(ins []instr, i int) int {
	for j := i - 1; j >= 0; j-- {
		if ins[j].op == 0x04 && ins[j].els == i {
			return ins[j].end
		}
	}
	return len(ins)
}

// dispatch follows a branch to the loop at index l with local pcLocal set
// to pc: Go's wasm functions start each loop iteration with
// `local.get PC; br_table ...`; -1 if the loop is not of that shape.
func dispatch(ins []instr, l, pcLocal, pc int) int {
	j := l + 1
	for j < len(ins) && ins[j].op == 0x02 {
		j++
	}
	if pcLocal < 0 || j+1 >= len(ins) || ins[j].op != 0x20 || int(ins[j].imm) != pcLocal || ins[j+1].op != 0x0e {
		return -1
	}
	tab := ins[j+1].table
	k := pc
	if k >= len(tab)-1 {
		k = len(tab) - 1
	}
	t := int(tab[k]) - 1
	if t < 0 || ins[t].op == 0x03 {
		return -1
	}
	return ins[t].end + 1
}

type hint struct {
	at     int
	likely bool
}

// hints returns the branches of a body to hint: an if or br_if one side
// of which runs straight into a cold call and the other does not.
func hints(body []byte, cold map[uint32]bool) ([]hint, error) {
	ins, err := decode(body)
	if err != nil {
		return nil, err
	}
	var out []hint
	for i := range ins {
		in := &ins[i]
		var taken, fall int
		switch in.op {
		case 0x04: // if: the then-branch is taken on a true condition
			taken = i + 1
			if in.els >= 0 {
				fall = in.els + 1
			} else {
				fall = in.end + 1
			}
		case 0x0d: // br_if
			if in.target < 0 {
				continue
			}
			fall = i + 1
			if ins[in.target].op == 0x03 {
				continue // a loop's back edge
			}
			taken = ins[in.target].end + 1
		default:
			continue
		}
		tc, fc := coldPath(ins, taken, cold), coldPath(ins, fall, cold)
		if tc != fc {
			out = append(out, hint{at: in.at, likely: fc})
		}
	}
	return out, nil
}

func blockType(r *reader) error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case c == 0x40, c >= 0x7b && c <= 0x7f, c == 0x70, c == 0x6f:
		return nil
	}
	r.i--
	return r.sleb(5) // a type index (s33)
}

// Verify checks a hinted module: one hint section, before the code
// section, naming functions in order, each hint on an if or br_if of its
// function's body (every body decodes). It returns the number of hints.
func Verify(module []byte) (int, error) {
	secs, err := sections(module)
	if err != nil {
		return 0, err
	}
	var hintSec []byte
	nImports := uint32(0)
	for i := range secs {
		s := &secs[i]
		switch s.id {
		case 0:
			n, off, err := readName(s.body)
			if err != nil {
				return 0, err
			}
			if n == SectionName {
				if hintSec != nil {
					return 0, errors.New("wasmhint: two hint sections")
				}
				hintSec = s.body[off:]
			}
		case 2:
			if nImports, err = countFuncImports(s); err != nil {
				return 0, err
			}
		case 10:
			if hintSec == nil {
				return 0, errors.New("wasmhint: no hint section before the code section")
			}
			return verifyCode(s.body, hintSec, nImports)
		}
	}
	return 0, errors.New("wasmhint: no code section")
}

func verifyCode(code, hintSec []byte, nImports uint32) (int, error) {
	bodies, err := codeBodies(code)
	if err != nil {
		return 0, err
	}
	decoded := make([][]instr, len(bodies))
	for i, b := range bodies {
		if decoded[i], err = decode(b); err != nil {
			return 0, fmt.Errorf("function %d: %w", nImports+uint32(i), err)
		}
	}
	count := uint32(len(bodies))
	h := reader{b: hintSec}
	nf, err := h.u32()
	if err != nil {
		return 0, err
	}
	total := 0
	last := int64(-1)
	for k := uint32(0); k < nf; k++ {
		f, err := h.u32()
		if err != nil {
			return 0, err
		}
		if int64(f) <= last || f < nImports || f-nImports >= count {
			return 0, fmt.Errorf("wasmhint: function %d out of order or range", f)
		}
		last = int64(f)
		starts := map[int]byte{}
		for _, in := range decoded[f-nImports] {
			starts[in.at] = in.op
		}
		n, err := h.u32()
		if err != nil {
			return 0, err
		}
		prev := -1
		for j := uint32(0); j < n; j++ {
			o, err1 := h.u32()
			size, err2 := h.u32()
			v, err3 := h.byte()
			if err := errors.Join(err1, err2, err3); err != nil {
				return 0, err
			}
			if op, ok := starts[int(o)]; !ok || (op != 0x04 && op != 0x0d) || size != 1 || v > 1 || int(o) <= prev {
				return 0, fmt.Errorf("wasmhint: function %d: bad hint at %d", f, o)
			}
			prev = int(o)
			total++
		}
	}
	if h.i != len(hintSec) {
		return 0, errors.New("wasmhint: bytes after the hints")
	}
	return total, nil
}
