package cachecore

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// How a configuration keys its routes' requests, recorded with its table
// layout (layoutsKey) so that a purge by replay knows when a configuration
// still serving keys a route otherwise. After a reload that changes a
// route's key_fields, ignore_fields, model_path or key_headers (what
// keyingTag digests), the configuration that drains its connections keeps
// serving entries under keys the new one cannot build: a purge by replay
// answered 200 and the old configuration served the purged answer
// (review Z72). Such a purge now removes every entry of the request's
// model on the route (model records are the process's, by route name),
// which reaches every configuration: more, never less.

// keyingLen is one route's part of keyings: the FNV-64 of its name and
// its keyTag, in hex.
const keyingLen = 32

// keyings is this configuration's routes' parts, one after the other.
func (c *Cache) keyings() string {
	b := make([]byte, 0, 16*len(c.cfg.Routes))
	for _, r := range c.cfg.Routes {
		b = binary.BigEndian.AppendUint64(b, fnv64(r.Name))
		b = binary.BigEndian.AppendUint64(b, r.keyTag)
	}
	return hex.EncodeToString(b)
}

// validKeyings reports a record's keyings as keyings writes them (empty
// for a layout recorded without: the configuration replaced, layoutWas).
func validKeyings(k string) bool {
	if len(k)%keyingLen != 0 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// keyingChanged reports whether a configuration the process started with
// lately keys route r's requests otherwise than this one: a route of its
// name with another keyTag. A record that cannot be read is an error: the
// purge is not done.
func (c *Cache) keyingChanged(r *Route) (bool, error) {
	raw, _, err := c.store.Get(layoutsKey)
	if errIs(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var own [16]byte
	binary.BigEndian.PutUint64(own[:], fnv64(r.Name))
	binary.BigEndian.PutUint64(own[8:], r.keyTag)
	name, tag := hex.EncodeToString(own[:8]), hex.EncodeToString(own[8:])
	seen := string(raw)
	for i := 0; i < maxLayoutsSeen && seen != ""; i++ {
		var l string
		l, seen, _ = strings.Cut(seen, ",")
		_, k, _ := strings.Cut(l, "/")
		if !validKeyings(k) {
			continue
		}
		for ; k != ""; k = k[keyingLen:] {
			if k[:16] == name && k[16:keyingLen] != tag {
				return true, nil
			}
		}
	}
	return false, nil
}
