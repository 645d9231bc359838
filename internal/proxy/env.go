package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aar-lab/aar/internal/llm"
)

// Environment variables the lab process reads for the proxy.
const (
	EnvAnthropicKey = "ANTHROPIC_API_KEY"
	EnvAnthropicURL = "ANTHROPIC_BASE_URL"
	EnvOpenAIKey    = "OPENAI_API_KEY"
	EnvOpenAIURL    = "OPENAI_BASE_URL"
	// EnvPrices names a prices file ({"model": {"input": USD/Mtok,
	// "output": …}}, as aar researcher --prices) over llm.DefaultPrices.
	EnvPrices = "AAR_PRICES"
)

// OptionsFromEnv reads the real keys, base URLs and prices from the
// environment (getenv is os.Getenv outside tests).
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		AnthropicKey: getenv(EnvAnthropicKey),
		AnthropicURL: getenv(EnvAnthropicURL),
		OpenAIKey:    getenv(EnvOpenAIKey),
		OpenAIURL:    getenv(EnvOpenAIURL),
	}
	prices, err := llm.LoadPrices(getenv(EnvPrices))
	if err != nil {
		return o, fmt.Errorf("%s: %w", EnvPrices, err)
	}
	o.Prices = prices
	return o, nil
}

// FromEnv returns the proxy configured from the environment, to mount with
// (*lab.Lab).SetProxy. A configuration it cannot use is logged, and the
// proxy then answers every call with 503 rather than forward unmetered.
func FromEnv(l Lab, getenv func(string) string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := OptionsFromEnv(getenv)
	if err == nil {
		o.Logger = log
		var p *Proxy
		if p, err = New(l, o); err == nil {
			return p
		}
	}
	msg := "the model proxy is misconfigured: " + err.Error()
	for _, k := range []string{o.AnthropicKey, o.OpenAIKey} {
		if k != "" {
			msg = strings.ReplaceAll(msg, k, "[redacted]")
		}
	}
	log.Error(msg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prov := "anthropic"
		if strings.HasPrefix(r.URL.Path, "/v1/proxy/openai") {
			prov = "openai"
		}
		writeError(w, prov, http.StatusServiceUnavailable, "not_configured", "the lab's model proxy is misconfigured; the operator has the details in the lab's log")
	})
}
