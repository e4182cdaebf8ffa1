//go:build floorkeyed && !floorpad

package main

// padPhase runs nothing without -tags floorpad (pad.go).
func padPhase(int) {}
