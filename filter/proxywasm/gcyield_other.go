//go:build !wasip1

package proxywasm

// yieldToCollector: natively the collector's workers run on their own
// threads; there is nothing to yield to.
func yieldToCollector() bool { return false }
