#!/usr/bin/env bash
# Static checks: gofmt, go vet, staticcheck, go.mod tidy, and generated
# protobuf code up to date. Tools come from the Go module proxy via
# tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="go tool -modfile=$PWD/tools/go.mod"

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "verify: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
$tools staticcheck ./...
go mod tidy -diff
(cd proto && $tools buf lint && $tools buf generate)
if ! git diff --quiet -- proto/; then
	echo "verify: regenerating protobuf code changed proto/ (run make proto and commit):" >&2
	git diff --stat -- proto/ >&2
	exit 1
fi
echo "verify: ok"
