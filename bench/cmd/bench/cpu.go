package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The machine may be shared (other jobs, other sessions): a measurement
// is only a measurement of the proxy if nothing else ran meanwhile. Each
// wrk repetition therefore accounts the CPU time of the whole machine
// against that of this run's own processes (the proxy's process group, this
// runner, wrk); what is left is someone else's, and a repetition where
// that exceeds 10 % of a CPU is repeated after the machine is quiet again.

const clkTck = 100 // USER_HZ

// machineTicks is user+nice+system time of all CPUs, in ticks.
func machineTicks() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t uint64
	for _, s := range f[1:4] {
		v, _ := strconv.ParseUint(s, 10, 64)
		t += v
	}
	return t
}

// procTicks returns utime+stime of a process and its process group id.
func procTicks(pid string) (ticks uint64, pgrp int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, pgrp, true
}

// groupTicks is the CPU time of the processes of one process group.
func groupTicks(pgid int) uint64 {
	var total uint64
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		if t, g, ok := procTicks(name); ok && g == pgid {
			total += t
		}
	}
	return total
}

// groupPids lists the processes of one process group.
func groupPids(pgid int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		if _, g, ok := procTicks(name); ok && g == pgid {
			out = append(out, name)
		}
	}
	return out
}

type cpuSnap struct {
	at                   time.Time
	machine, self, proxy uint64
}

func (r *run) cpuSnap(sys *system) cpuSnap {
	self, _, _ := procTicks(strconv.Itoa(os.Getpid()))
	return cpuSnap{at: time.Now(), machine: machineTicks(), self: self, proxy: groupTicks(sys.Pid())}
}

// proxyCPU is the proxy's CPU time between two snaps.
func proxyCPU(a, b cpuSnap) time.Duration {
	return time.Duration(b.proxy-a.proxy) * time.Second / clkTck
}

// otherCPU is the CPU (in CPUs, e.g. 0.25) used by others between two
// snaps; extra is CPU time of our own processes that already exited (wrk).
func otherCPU(a, b cpuSnap, extra time.Duration) float64 {
	mach := float64(b.machine-a.machine) / clkTck
	ours := float64(b.self+b.proxy-a.self-a.proxy)/clkTck + extra.Seconds()
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return 0
	}
	return max(0, mach-ours) / secs
}
