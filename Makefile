# siteplex — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS    := ./...
# staticcheck: `go install honnef.co/go/tools/cmd/staticcheck@v0.8.2` (.ci/run does).
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $$($(GO) env GOPATH)/bin/staticcheck)

.PHONY: build test test-short lint bench demo clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/siteplex ./cmd/siteplex

## test: the whole suite, with the real PostgreSQL, Docker and Django it finds
## (missing services skip loudly; SITEPLEX_REQUIRE_ALL=1 makes them fail).
test: build
	$(GO) test -count=1 -timeout 40m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet $(PKGS)
	@[ -x "$(STATICCHECK)" ] || { echo "staticcheck missing: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2"; exit 1; }
	$(STATICCHECK) $(PKGS)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

demo: build
	./bin/siteplex demo

clean:
	rm -rf bin
