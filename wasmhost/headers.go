package wasmhost

import "strings"

// headerMap is an ordered multi-map with Envoy's behaviour: keys are
// lower-cased on the way in, lookups are case-insensitive, and get returns
// the first value.
type headerMap struct {
	pairs [][2]string
}

func newHeaderMap(pairs [][2]string) *headerMap {
	m := &headerMap{}
	for _, p := range pairs {
		m.add(p[0], p[1])
	}
	return m
}

func (m *headerMap) clone() [][2]string {
	if m == nil {
		return nil
	}
	return append([][2]string(nil), m.pairs...)
}

func (m *headerMap) get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, p := range m.pairs {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

func (m *headerMap) add(key, value string) {
	m.pairs = append(m.pairs, [2]string{strings.ToLower(key), value})
}

// set is Envoy's setCopy: the first entry takes the new value, later
// duplicates go, and a missing key is appended.
func (m *headerMap) set(key, value string) {
	key = strings.ToLower(key)
	out := m.pairs[:0]
	found := false
	for _, p := range m.pairs {
		if p[0] == key {
			if found {
				continue
			}
			found = true
			p[1] = value
		}
		out = append(out, p)
	}
	m.pairs = out
	if !found {
		m.add(key, value)
	}
}

func (m *headerMap) remove(key string) {
	key = strings.ToLower(key)
	out := m.pairs[:0]
	for _, p := range m.pairs {
		if p[0] != key {
			out = append(out, p)
		}
	}
	m.pairs = out
}

func (m *headerMap) replaceAll(pairs [][2]string) {
	m.pairs = nil
	for _, p := range pairs {
		m.add(p[0], p[1])
	}
}

// byteSize is HeaderMap::byteSize(), what proxy_get_header_map_size
// answers in Envoy: the sum of key and value lengths (not the entry count).
func (m *headerMap) byteSize() uint32 {
	n := 0
	for _, p := range m.pairs {
		n += len(p[0]) + len(p[1])
	}
	return uint32(n)
}

func (m *headerMap) len() int {
	if m == nil {
		return 0
	}
	return len(m.pairs)
}

func getHeader(pairs [][2]string, key string) string {
	key = strings.ToLower(key)
	for _, p := range pairs {
		if strings.ToLower(p[0]) == key {
			return p[1]
		}
	}
	return ""
}
