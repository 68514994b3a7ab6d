# tsunagu — common tasks. `make help` lists them.
GO ?= go
TOOLS = $(GO) tool -modfile=$(CURDIR)/tools/go.mod

.PHONY: help build test proto verify bench fuzz run

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build every package and the binaries
	$(GO) build ./...

test: ## the full suite, as CI runs it (needs redis-server; see README)
	./scripts/test.sh

proto: ## regenerate protobuf code from proto/
	cd proto && $(TOOLS) buf lint && $(TOOLS) buf generate

bench: ## benchmarks: decision cost, state machine, end to end over NATS
	$(GO) test -run='^$$' -bench=. -benchmem ./actors/...
	$(GO) test -run='^$$' -bench=E2E -benchtime=1x ./node/

run: ## run a single node with the demo queues
	$(GO) run ./node

fuzz: ## run every fuzz target for FUZZTIME (default 20s) each
	./scripts/fuzz.sh $${FUZZTIME:-20s}

verify: ## gofmt, vet, staticcheck, go.mod tidy, generated code up to date
	./scripts/verify.sh

.PHONY: loadtest
loadtest: ## run a load-test scenario (SCENARIO=…, default the smoke); results in loadtest/results/
	mkdir -p loadtest/results
	$(GO) run ./loadtest -scenario $${SCENARIO:-loadtest/scenarios/smoke.json} -out loadtest/results/result.json -html loadtest/results/report.html
