package cachecore

import (
	"reflect"
	"testing"
)

// TestCacheStatusSame checks that CacheStatus.same tells apart two values
// that differ in any one field, so that statusValue never returns the
// value of another status: a field added to CacheStatus must be added to
// same too.
func TestCacheStatusSame(t *testing.T) {
	var zero CacheStatus
	if !zero.same(&CacheStatus{}) {
		t.Fatal("two zero CacheStatus values differ")
	}
	typ := reflect.TypeOf(zero)
	for i := 0; i < typ.NumField(); i++ {
		var cs CacheStatus
		f := reflect.ValueOf(&cs).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.Uint8:
			f.SetUint(1)
		default:
			t.Fatalf("field %s: kind %s not covered by this test", typ.Field(i).Name, f.Kind())
		}
		if cs.same(&zero) || zero.same(&cs) {
			t.Errorf("CacheStatus values differing in %s are the same to same()", typ.Field(i).Name)
		}
		if other := cs; !cs.same(&other) {
			t.Errorf("a CacheStatus with %s set differs from its copy", typ.Field(i).Name)
		}
	}
}
