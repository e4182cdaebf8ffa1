package wasmbuild

import (
	"testing"

	"github.com/modelcache/modelcache/internal/wasmhint"
)

// The module tests run is the product's: branch hints included, each on a
// branch of its function (internal/wasmhint).
func TestFilterIsHinted(t *testing.T) {
	n, err := wasmhint.Verify(Bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	// Go's module has a nil check, a bounds check or a stack check in
	// nearly every function: thousands of them.
	if n < 5000 {
		t.Fatalf("%d hints: the cold branches are no longer found", n)
	}
}
