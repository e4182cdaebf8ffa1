package cachecore

import (
	"time"

	"github.com/tidwall/gjson"
)

// Semantic configures the near-duplicate lookup of a chat or completions
// route (semantic*.go): on an exact miss the last user turn is embedded
// through Embedding and compared with the turns of stored answers in the
// same partition; a close enough, guarded and confirmed one answers.
// semMaxEntriesLimit is the largest max_entries a route may set.
const semMaxEntriesLimit = 1 << 22

type Semantic struct {
	Embedding     EmbeddingService
	MinSimilarity float64 // cosine at or above which a stored turn may answer
	Guards        Guards
	MaxEntries    int // indexed turns per embedding model (all partitions)
	// ConfirmHits: exact hits an entry must have served before near
	// matches may reach it (0: reachable at once). ConfirmShadow: a shadow
	// comparison that agreed confirms it too.
	ConfirmHits   int
	ConfirmShadow bool
	MaxTextBytes  int // longer turns are neither embedded nor indexed
	// Breaker: after Failures embeddings calls in a row failed or timed
	// out, a VM skips the call for CoolDown (embedding.breaker).
	Breaker BreakerConfig
}

// BreakerConfig is a circuit breaker's setting: after Failures failures
// in a row, the service is skipped for CoolDown, then tried again.
type BreakerConfig struct {
	Failures int
	CoolDown time.Duration
}

// EmbeddingService is the embeddings server, reached through an Envoy
// cluster (an HTTP call), never directly.
type EmbeddingService struct {
	Cluster   string
	Path      string
	Authority string
	Model     string
	Timeout   time.Duration
}

// Guards are the false-positive vetoes applied after the similarity
// threshold; each is on unless switched off.
type Guards struct {
	Numbers  bool // numbers, dates, units and quantities must match
	Negation bool // negation and polarity (un-/in-/dis-, antonyms) must match
	Entities bool // names, acronyms, quoted and rare content words must match
}

func semanticDefaults() Semantic {
	return Semantic{
		Embedding:     EmbeddingService{Path: "/v1/embeddings", Authority: "embeddings", Timeout: 200 * time.Millisecond},
		MinSimilarity: DefaultMinSimilarity,
		Guards:        Guards{Numbers: true, Negation: true, Entities: true},
		MaxEntries:    10000,
		ConfirmHits:   1,
		ConfirmShadow: true,
		MaxTextBytes:  1024,
		Breaker:       BreakerConfig{Failures: 5, CoolDown: 5 * time.Second},
	}
}

// DefaultMinSimilarity is semantic.min_similarity's default, chosen with
// make semantic-eval (RATIONALE.md, "Semantic cache: guards, not a
// threshold").
const DefaultMinSimilarity = 0.90

func (p *parser) semantic(path string, v gjson.Result, k Kind) *Semantic {
	if len(path) > 9 && path[:9] == "defaults." {
		p.fail(path, "belongs on a chat or completions route, not in defaults")
		return nil
	}
	if k != KindChat && k != KindCompletions {
		p.fail(path, "is only for chat and completions routes (this route is %s)", k)
		return nil
	}
	s := semanticDefaults()
	haveCluster := false
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "embedding":
			p.fields(sub, val, func(key string, val gjson.Result) bool {
				sub := join(sub, key)
				switch key {
				case "cluster":
					s.Embedding.Cluster, haveCluster = p.printable(sub, val, ""), true
					if s.Embedding.Cluster == "" {
						p.fail(sub, "must name an Envoy cluster")
					}
				case "path":
					s.Embedding.Path = p.printable(sub, val, pathNote)
					if len(s.Embedding.Path) == 0 || s.Embedding.Path[0] != '/' {
						p.fail(sub, "must start with /")
					}
				case "authority":
					s.Embedding.Authority = p.authority(sub, val)
				case "model":
					s.Embedding.Model = p.str(sub, val)
				case "timeout":
					s.Embedding.Timeout = p.duration(sub, val, time.Millisecond, 10*time.Second)
				case "breaker":
					p.fields(sub, val, func(key string, val gjson.Result) bool {
						switch key {
						case "failures":
							s.Breaker.Failures = p.intRange(join(sub, key), val, 1, 1000)
						case "cool_down":
							s.Breaker.CoolDown = p.duration(join(sub, key), val, 10*time.Millisecond, time.Hour)
						default:
							return false
						}
						return true
					})
				default:
					return false
				}
				return true
			})
		case "min_similarity":
			s.MinSimilarity = p.floatRange(sub, val, 0.5, 1)
		case "guards":
			if val.Type == gjson.False || val.Type == gjson.True {
				on := p.boolean(sub, val)
				s.Guards = Guards{Numbers: on, Negation: on, Entities: on}
				break
			}
			p.fields(sub, val, func(key string, val gjson.Result) bool {
				sub := join(sub, key)
				switch key {
				case "numbers":
					s.Guards.Numbers = p.boolean(sub, val)
				case "negation":
					s.Guards.Negation = p.boolean(sub, val)
				case "entities":
					s.Guards.Entities = p.boolean(sub, val)
				default:
					return false
				}
				return true
			})
		case "max_entries":
			s.MaxEntries = p.intRange(sub, val, 1, semMaxEntriesLimit)
		case "max_text_bytes":
			s.MaxTextBytes = p.intRange(sub, val, 16, 16<<10)
		case "confirm":
			p.fields(sub, val, func(key string, val gjson.Result) bool {
				sub := join(sub, key)
				switch key {
				case "exact_hits":
					s.ConfirmHits = p.intRange(sub, val, 0, 1000)
				case "shadow":
					s.ConfirmShadow = p.boolean(sub, val)
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	})
	if !haveCluster {
		p.fail(path+".embedding.cluster", "is required: the Envoy cluster of the embeddings server")
	}
	return &s
}
