package modelsim

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
)

// Classification is the body of a /v1/classify answer. Labels are sorted by
// descending score, sum to 1, and Label/Score repeat the first of them.
type Classification struct {
	Model  string       `json:"model"`
	Label  string       `json:"label"`
	Score  float64      `json:"score"`
	Labels []LabelScore `json:"labels"`
}

// LabelScore is one label's probability.
type LabelScore struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

type classifyRequest struct {
	Model string `json:"model"`
	Input string `json:"input"`
}

// scoreMarker lets a test choose the classifier's confidence from the input
// text alone, which survives any cache or proxy in between.
var scoreMarker = regexp.MustCompile(`\[score=([0-9]*\.?[0-9]+)\]`)

var baseLabels = []string{"positive", "negative", "neutral", "mixed"}

// ClassifyAnswer is the reference answer to a classify request body.
func ClassifyAnswer(version string, body []byte) (*Classification, error) {
	return classifyAnswer(version, body, answerOpts{})
}

// classifyAnswer picks the top label and its score from the digest unless
// forced, by the input's [score=…] marker first, then by the score knob. The
// remainder is spread over the other labels, adding labels when needed so
// that the top label stays on top even for a forced score of 0.3.
func classifyAnswer(version string, body []byte, o answerOpts) (*Classification, error) {
	var req classifyRequest
	if _, err := decodeObject(body, &req); err != nil {
		return nil, err
	}
	if req.Model == "" {
		return nil, badRequest("model", "you must provide a model parameter")
	}
	if req.Input == "" {
		return nil, badRequest("input", "must be a non-empty string")
	}
	c := &Classification{Model: req.Model, Labels: []LabelScore{}}
	if o.empty {
		return c, nil
	}
	d := digest(version, PathClassify, req.Model, req.Input)
	score := 0.5 + float64(d[0]%50)/100
	if o.score > 0 {
		score = o.score
	}
	if m := scoreMarker.FindStringSubmatch(req.Input); m != nil {
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil || f < MinScore || f > 1 {
			return nil, badRequest("input", "score marker %s must be in [%v,1]", m[0], MinScore)
		}
		score = f
	}
	labels := append([]string(nil), baseLabels...)
	for (1-score)/float64(len(labels)-1) > score {
		labels = append(labels, fmt.Sprintf("label_%d", len(labels)))
	}
	top := int(d[1]) % len(baseLabels)
	rest := 1 - score
	weights := make([]float64, 0, len(labels)-1)
	var wsum float64
	for i := range labels {
		if i != top {
			w := 1 + float64(d[2+i%30])/255
			weights = append(weights, w)
			wsum += w
		}
	}
	shares := make([]float64, len(weights))
	fair := false
	for i, w := range weights {
		shares[i] = rest * w / wsum
		if shares[i] > score {
			fair = true
		}
	}
	var given float64
	for i := range shares {
		if fair {
			shares[i] = rest / float64(len(shares))
		}
		if i == len(shares)-1 {
			shares[i] = math.Max(0, rest-given)
		}
		given += shares[i]
	}
	c.Labels = append(c.Labels, LabelScore{labels[top], score})
	j := 0
	for i, l := range labels {
		if i != top {
			c.Labels = append(c.Labels, LabelScore{l, shares[j]})
			j++
		}
	}
	// The top label is first; keep it first on ties.
	sort.SliceStable(c.Labels[1:], func(a, b int) bool { return c.Labels[1+a].Score > c.Labels[1+b].Score })
	c.Label, c.Score = labels[top], score
	return c, nil
}
