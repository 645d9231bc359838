package llm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Price is a model's price in US dollars per million tokens. Zero
// CacheRead and CacheWrite are derived from Input (×0.1 and ×1.25, the
// Anthropic ratios for reads and five-minute cache writes).
type Price struct {
	Input      float64 `json:"input"`
	Output     float64 `json:"output"`
	CacheRead  float64 `json:"cache_read,omitempty"`
	CacheWrite float64 `json:"cache_write,omitempty"`
}

// Prices maps a model name or name prefix to its price; the longest
// matching prefix wins, so "claude-opus-5" covers dated snapshots of it
// while "claude-opus-5-5" overrides it for that model.
type Prices map[string]Price

// DefaultPrices are list prices of Claude models as published on
// Anthropic's pricing page in November 2026 (USD per million tokens). They
// are defaults only: pass a prices file to change or extend them, and give
// a price for every model you budget in dollars. Haiku 5.5 is tiered; its
// entry is the lowest tier, so budgets on it should carry a margin.
func DefaultPrices() Prices {
	return Prices{
		"claude-fable-5-2":  {Input: 8, Output: 40},
		"claude-fable-5-1":  {Input: 10, Output: 50},
		"claude-fable-5":    {Input: 10, Output: 50},
		"claude-opus-5-5":   {Input: 4, Output: 20},
		"claude-opus-5":     {Input: 5, Output: 25},
		"claude-opus-4-8":   {Input: 5, Output: 25},
		"claude-opus-4-7":   {Input: 5, Output: 25},
		"claude-opus-4-6":   {Input: 5, Output: 25},
		"claude-opus-4-5":   {Input: 5, Output: 25},
		"claude-opus-4-1":   {Input: 15, Output: 75},
		"claude-sonnet-5-5": {Input: 2, Output: 10},
		"claude-sonnet-5":   {Input: 2, Output: 10},
		"claude-sonnet-4-6": {Input: 3, Output: 15},
		"claude-sonnet-4-5": {Input: 3, Output: 15},
		"claude-haiku-5-5":  {Input: 0.10, Output: 0.50},
		"claude-haiku-4-5":  {Input: 1, Output: 5},
		"scripted":          {},
		"builtin":           {},
	}
}

// LoadPrices reads a prices file — a JSON object {"model or prefix":
// {"input": …, "output": …, "cache_read": …, "cache_write": …}} — over the
// defaults (its entries replace or add to them).
func LoadPrices(path string) (Prices, error) {
	p := DefaultPrices()
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var extra map[string]Price
	if err := json.Unmarshal(b, &extra); err != nil {
		return nil, fmt.Errorf("prices file %s: %w (want {\"model\": {\"input\": USD per Mtok, \"output\": …}})", path, err)
	}
	for k, v := range extra {
		for _, f := range []float64{v.Input, v.Output, v.CacheRead, v.CacheWrite} {
			if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("prices file %s: model %q has a negative or non-finite price", path, k)
			}
		}
		if k == "" {
			return nil, fmt.Errorf("prices file %s: an entry has an empty model name", path)
		}
		p[k] = v
	}
	return p, nil
}

// Lookup returns the price of model (longest matching prefix).
func (p Prices) Lookup(model string) (Price, bool) {
	best, found := "", false
	for k := range p {
		if strings.HasPrefix(model, k) && (!found || len(k) > len(best)) {
			best, found = k, true
		}
	}
	if !found {
		return Price{}, false
	}
	pr := p[best]
	if pr.CacheRead == 0 {
		pr.CacheRead = pr.Input * 0.1
	}
	if pr.CacheWrite == 0 {
		pr.CacheWrite = pr.Input * 1.25
	}
	return pr, true
}

// Cost is what usage costs at this price, in dollars.
func (pr Price) Cost(u Usage) float64 {
	return (float64(u.InputTokens)*pr.Input + float64(u.OutputTokens)*pr.Output +
		float64(u.CacheReadTokens)*pr.CacheRead + float64(u.CacheWriteTokens)*pr.CacheWrite) / 1e6
}

// Models lists the table's entries, sorted.
func (p Prices) Models() []string {
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
