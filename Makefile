# aar — make targets. `make demo` runs the main job; `make test` runs the tests.
GO        ?= go
BIN       := bin/aar
DEMO_DATA ?= .aar-demo
FIXTURE   := internal/testbed/testdata/study
STATICCHECK_VERSION := v0.8.2

.PHONY: build demo test lint fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/aar

# The main job until `aar run` exists: import the bundled study-format
# fixture (chat rows, ID and OOD subsets, a cache_results tree), write its
# public view, and score a constant "A" submission on every cell.
demo: build
	rm -rf $(DEMO_DATA)
	$(BIN) --data $(DEMO_DATA)/lab testbed import $(FIXTURE)/labeled_data/chat --name chat --cache $(FIXTURE)/cache_results --split-seed 7
	$(BIN) --data $(DEMO_DATA)/lab testbed show chat
	$(BIN) --data $(DEMO_DATA)/lab testbed public chat $(DEMO_DATA)/public
	sed -E 's/.*"id":"([^"]+)".*/{"id":"\1","label":0}/' $(DEMO_DATA)/public/test.jsonl > $(DEMO_DATA)/always-a.jsonl
	$(BIN) --data $(DEMO_DATA)/lab score --testbed chat $(DEMO_DATA)/always-a.jsonl

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# gofmt and staticcheck (installed from the Go module proxy when missing).
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: run gofmt -w on the files above"; exit 1; }
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

# Short runs of every fuzz target (parsers of outside input).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime 20s ./internal/jsonl
	$(GO) test -run '^$$' -fuzz '^FuzzParseRows$$' -fuzztime 20s ./internal/testbed
	$(GO) test -run '^$$' -fuzz '^FuzzParsePredictions$$' -fuzztime 20s ./internal/score

clean:
	rm -rf bin $(DEMO_DATA)
