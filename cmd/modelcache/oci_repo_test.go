package main

import (
	"strings"
	"testing"
)

func TestCheckRepoTag(t *testing.T) {
	for _, c := range []struct{ repo, tag, err string }{
		{"registry.example.com/modelcache", "latest", ""},
		{"localhost:5000/mesh/model-cache__x", "v1.2.3", ""},
		{"127.0.0.1:5000/a/b.c", "_x", ""},
		{"user/modelcache", "latest", ""}, // Docker Hub
		{"modelcache", "latest", ""},
		{"OCI://registry.example.com/modelcache", "latest", "leave out oci://"},
		{"registry.example.com/ModelCache", "latest", "not an image repository"},
		{"registry.example.com/", "latest", "not an image repository"},
		{"registry.example.com//m", "latest", "not an image repository"},
		{"registry.example.com/m.", "latest", "not an image repository"},
		{"https://registry.example.com/m", "latest", "not an image repository"},
		{"registry.example.com/m@sha256:00", "latest", "not an image repository"},
		{"registry.example.com/m", "", "not an image tag"},
		{"registry.example.com/m", "-x", "not an image tag"},
		{"registry.example.com/m", strings.Repeat("a", 129), "not an image tag"},
	} {
		err := checkRepoTag(c.repo, c.tag)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("checkRepoTag(%q, %q) = %v, want %q", c.repo, c.tag, err, c.err)
		}
	}
}
