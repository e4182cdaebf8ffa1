package cachecore

import (
	"fmt"
	"testing"
)

// Admission's reading of an embeddings answer of 64 vectors of 256 floats
// (embBody): the general checks one pass each (BenchmarkDuplicateMembers-
// Embeddings is the third), and the one pass an answer of the usual shape
// takes instead.

func BenchmarkAnswerPassCheckJSON(b *testing.B) {
	body := embBody()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if checkJSON(body) != ReasonNone {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAnswerPassTopMembers(b *testing.B) {
	body := string(embBody())
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if readTopMembers(body).data == "" {
			b.Fatal("no data")
		}
	}
}

func BenchmarkAnswerOnePass(b *testing.B) {
	body := embBody()
	c := &Cache{}
	vecs := make([][]byte, 64)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		clear(vecs)
		if _, _, ok := c.scanEmbeddingsAnswer(body, 64, vecs, 0); !ok {
			b.Fatal("refused")
		}
	}
}

// The vectors' part of the one pass: 256 floats as upstreams write them.
func BenchmarkFiniteNumbers(b *testing.B) {
	var v []byte
	v = append(v, '[')
	for i := 0; i < 256; i++ {
		if i > 0 {
			v = append(v, ',')
		}
		v = append(v, fmt.Sprintf("%.8f", float64(i%97)/97-0.5)...)
	}
	s := string(append(v, ']'))
	b.SetBytes(int64(len(s)))
	for i := 0; i < b.N; i++ {
		if n, ok := finiteNumbers(s); !ok || n != 256 {
			b.Fatal("refused")
		}
	}
}
