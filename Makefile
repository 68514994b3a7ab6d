# tsunagu — common tasks. `make help` lists them.
GO ?= go
TOOLS = $(GO) tool -modfile=$(CURDIR)/tools/go.mod

.PHONY: help build test test-short lint proto proto-check verify bench fuzz loadtest chaos

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build every package and the binaries
	$(GO) build ./...

test: ## the full suite, as CI runs it (needs redis-server; see README)
	./scripts/test.sh

test-short: ## unit tests with -race, no external servers
	$(GO) test -race -short ./...

proto: ## regenerate protobuf code from proto/
	cd proto && $(TOOLS) buf lint && $(TOOLS) buf generate

proto-check: proto ## fail if regenerating changes anything
	git diff --exit-code -- proto/

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(TOOLS) staticcheck ./...

verify: lint proto-check ## lint, generated code up to date, go.mod tidy
	$(GO) mod tidy -diff

bench: ## routing benchmarks (figures for the notes)
	$(GO) test -run='^$$' -bench=. -benchmem ./actors/... ./gateway/...

fuzz: ## run every fuzz target for FUZZTIME (default 20s) each
	./scripts/fuzz.sh $${FUZZTIME:-20s}
