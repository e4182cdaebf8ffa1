package wasmhost

import (
	"encoding/binary"
	"sort"

	"github.com/tetratelabs/wazero/api"
)

// wasiFuncs is the host's own wasi_snapshot_preview1 (and its wasi_unstable
// twin), written after cpp-host src/exports.cc as shipped in Envoy ≥ 1.39
// (PR #533): stdout/stderr go to the VM log, there are no files, args or
// sockets, and poll_oneoff reports success with zero events because the Go
// runtime throws if it fails. Even cpp-host's signature slips are kept
// (path_link and path_symlink take one parameter fewer than wasip1): a module
// importing them would not link in Envoy either.
func wasiFuncs(module string) []hostFunc {
	ret := []api.ValueType{i32}
	f := func(name string, params []api.ValueType, fn func(v *vm, s []uint64)) hostFunc {
		return hostFunc{module: module, name: name, params: params, results: ret, fn: fn}
	}
	errno := func(e uint64) func(*vm, []uint64) { return func(_ *vm, s []uint64) { s[0] = e } }
	// stdio answers success on fds 1 and 2 and BADF elsewhere.
	stdio := func(_ *vm, s []uint64) {
		if fd := uint32(s[0]); fd == 1 || fd == 2 {
			s[0] = errnoSuccess
		} else {
			s[0] = errnoBadf
		}
	}
	p := func(types ...api.ValueType) []api.ValueType { return types }
	return []hostFunc{
		f("args_get", sig(2), errno(errnoSuccess)),
		f("args_sizes_get", sig(2), func(v *vm, s []uint64) {
			if !v.writeU32(uint32(s[0]), 0) || !v.writeU32(uint32(s[1]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}),
		f("environ_get", sig(2), wasiEnvironGet),
		f("environ_sizes_get", sig(2), wasiEnvironSizesGet),
		f("clock_res_get", sig(2), func(v *vm, s []uint64) {
			if id := uint32(s[0]); id > 1 {
				s[0] = errnoNotsup
				return
			}
			if !v.writeU64(uint32(s[1]), 1) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}),
		f("clock_time_get", p(i32, i64, i32), func(v *vm, s []uint64) {
			var t uint64
			switch uint32(s[0]) {
			case 0:
				t = uint64(v.h.clock.Now().UnixNano())
			case 1:
				t = uint64(v.h.clock.Nanotime())
			default:
				s[0] = errnoNotsup
				return
			}
			if !v.writeU64(uint32(s[2]), t) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}),
		f("fd_advise", p(i32, i64, i64, i32), errno(errnoSuccess)),
		f("fd_allocate", p(i32, i64, i64), stdio),
		f("fd_close", sig(1), func(v *vm, s []uint64) {
			v.h.log(v.name, LogTrace, "wasi_unstable fd_close")
			s[0] = errnoSuccess
		}),
		f("fd_datasync", sig(1), stdio),
		f("fd_fdstat_get", sig(2), func(v *vm, s []uint64) {
			if fd := uint32(s[0]); fd != 1 && fd != 2 {
				s[0] = errnoBadf
				return
			}
			// filetype unknown, no flags, rights_base = FD_WRITE.
			var st [24]byte
			binary.LittleEndian.PutUint64(st[8:], 64)
			v.mem.Write(uint32(s[1]), st[:])
			s[0] = errnoSuccess
		}),
		f("fd_fdstat_set_flags", sig(2), errno(errnoNosys)),
		f("fd_fdstat_set_rights", p(i32, i64, i64), stdio),
		f("fd_filestat_get", sig(2), errno(errnoBadf)),
		f("fd_filestat_set_size", p(i32, i64), stdio),
		f("fd_filestat_set_times", p(i32, i64, i64, i32), stdio),
		f("fd_pread", p(i32, i32, i32, i64, i32), errno(errnoNosys)),
		f("fd_prestat_get", sig(2), errno(errnoBadf)),
		f("fd_prestat_dir_name", sig(3), errno(errnoNosys)),
		f("fd_pwrite", p(i32, i32, i32, i64, i32), func(v *vm, s []uint64) {
			s[0] = wasiWrite(v, uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[4]))
		}),
		f("fd_read", sig(4), errno(errnoNosys)),
		f("fd_readdir", p(i32, i32, i32, i64, i32), func(v *vm, s []uint64) {
			if !v.writeU32(uint32(s[4]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotdir
		}),
		f("fd_renumber", sig(2), func(_ *vm, s []uint64) {
			fd, to := uint32(s[0]), uint32(s[1])
			if (fd != 1 && fd != 2) || (to != 1 && to != 2) {
				s[0] = errnoBadf
				return
			}
			s[0] = errnoNotsup
		}),
		f("fd_seek", p(i32, i64, i32, i32), func(v *vm, s []uint64) {
			v.h.log(v.name, LogTrace, "wasi_unstable fd_seek")
			s[0] = errnoSuccess
		}),
		f("fd_sync", sig(1), stdio),
		f("fd_tell", sig(2), func(v *vm, s []uint64) {
			if fd := uint32(s[0]); fd != 1 && fd != 2 {
				s[0] = errnoBadf
				return
			}
			if !v.writeU64(uint32(s[1]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}),
		f("fd_write", sig(4), func(v *vm, s []uint64) {
			s[0] = wasiWrite(v, uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3]))
		}),
		f("path_create_directory", sig(3), errno(errnoNotsup)),
		f("path_filestat_get", sig(5), errno(errnoNotsup)),
		f("path_filestat_set_times", p(i32, i32, i32, i32, i64, i64, i32), errno(errnoNotsup)),
		f("path_link", sig(6), errno(errnoNotsup)),
		f("path_open", p(i32, i32, i32, i32, i32, i64, i64, i32, i32), errno(errnoNoent)),
		f("path_readlink", sig(6), func(v *vm, s []uint64) {
			if !v.writeU32(uint32(s[5]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		}),
		f("path_remove_directory", sig(3), errno(errnoNotsup)),
		f("path_rename", sig(6), errno(errnoNotsup)),
		f("path_symlink", sig(4), errno(errnoNotsup)),
		f("path_unlink_file", sig(3), errno(errnoNotsup)),
		f("poll_oneoff", sig(4), wasiPollOneoff),
		{module: module, name: "proc_exit", params: sig(1), fn: func(v *vm, s []uint64) {
			// cpp-host logs "wasi_unstable proc_exit" and fails the VM; the
			// call must not return into the guest.
			panic(&ExitError{Code: uint32(s[0])})
		}},
		f("random_get", sig(2), func(v *vm, s []uint64) {
			n := uint32(s[1])
			if n > maxRandomSize {
				s[0] = errnoInval
				return
			}
			if n == 0 {
				s[0] = errnoSuccess
				return
			}
			buf := make([]byte, n)
			if _, err := v.h.rand.Read(buf); err != nil {
				panic(&trapError{msg: "wasmhost: Config.Rand failed: " + err.Error()})
			}
			if !v.mem.Write(uint32(s[0]), buf) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}),
		f("sched_yield", nil, errno(errnoSuccess)),
		f("sock_accept", sig(3), func(v *vm, s []uint64) {
			if !v.writeU64(uint32(s[2]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		}),
		f("sock_recv", sig(6), func(v *vm, s []uint64) {
			if !v.writeU32(uint32(s[4]), 0) || !v.mem.WriteUint16Le(uint32(s[5]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		}),
		f("sock_send", sig(5), func(v *vm, s []uint64) {
			if !v.writeU32(uint32(s[4]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoNotsup
		}),
		f("sock_shutdown", sig(2), errno(errnoNotsup)),
	}
}

// pollSpinLimit bounds poll_oneoff calls within one guest call. Envoy's stub
// never blocks, so a plugin that sleeps busy-spins the worker; under a
// FakeClock that never moves it would spin forever, so the host traps the VM
// with a message that names the cause instead of hanging the test.
const pollSpinLimit = 50_000

func wasiPollOneoff(v *vm, s []uint64) {
	v.polls++
	if v.polls > pollSpinLimit {
		panic(&trapError{msg: "wasmhost: poll_oneoff called 50000 times in one callback: the plugin sleeps or blocks (time.Sleep, channel wait), which busy-spins an Envoy worker"})
	}
	if !v.writeU32(uint32(s[3]), 0) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

// wasiWrite is cpp-host writevImpl: stdout is logged at info, stderr at
// error, one trailing newline dropped; other fds are BADF.
func wasiWrite(v *vm, fd, iovs, iovsLen, nwrittenPtr uint32) uint64 {
	var level LogLevel
	switch fd {
	case 1:
		level = LogInfo
	case 2:
		level = LogError
	default:
		return errnoBadf
	}
	var buf []byte
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := v.mem.Read(iovs+i*8, 8)
		if !ok {
			return errnoFault
		}
		ptr, n := binary.LittleEndian.Uint32(iov), binary.LittleEndian.Uint32(iov[4:])
		if n == 0 {
			continue
		}
		b, ok := v.mem.Read(ptr, n)
		if !ok {
			return errnoFault
		}
		buf = append(buf, b...)
	}
	written := len(buf)
	if written > 0 {
		if buf[written-1] == '\n' {
			buf = buf[:written-1]
		}
		v.h.log(v.name, level, string(buf))
	}
	if !v.writeU32(nwrittenPtr, uint32(written)) {
		return errnoFault
	}
	return errnoSuccess
}

func (h *Host) environ() []string {
	keys := make([]string, 0, len(h.cfg.Env))
	for k := range h.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + h.cfg.Env[k]
	}
	return out
}

func wasiEnvironSizesGet(v *vm, s []uint64) {
	env := v.h.environ()
	size := 0
	for _, e := range env {
		size += len(e) + 1
	}
	if !v.writeU32(uint32(s[0]), uint32(len(env))) || !v.writeU32(uint32(s[1]), uint32(size)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func wasiEnvironGet(v *vm, s []uint64) {
	arr, buf := uint32(s[0]), uint32(s[1])
	for _, e := range v.h.environ() {
		if !v.writeU32(arr, buf) {
			s[0] = errnoFault
			return
		}
		data := append([]byte(e), 0)
		if !v.mem.Write(buf, data) {
			s[0] = errnoFault
			return
		}
		buf += uint32(len(data))
		arr += 4
	}
	s[0] = errnoSuccess
}
