# bastion: `make help` lists the targets.
GO      ?= go
BIN     := bin/bastion
PKGS    := ./...
export CGO_ENABLED := 1

.DEFAULT_GOAL := help

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the Debian packages tests and demo need (openssh, postgresql, asciinema, tmux, chromium)
	@scripts/deps.sh

build: ## build bin/bastion
	$(GO) build -o $(BIN) ./cmd/bastion

demo: deps build ## run bastion in dev mode: embedded OIDC issuer, SQLite store, a logged-in demo agent
	$(BIN) dev --data-dir bastion-data

test: deps vet ## run every test, with the race detector, against real OpenSSH/PostgreSQL/asciinema/Chromium
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	COMPAT_SHORT=1 scripts/compat.sh

vet: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet ## vet, gofmt and staticcheck (when installed)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed; skipped"; fi

fuzz: ## run each fuzz target briefly (FUZZTIME=10s)
	@scripts/fuzz.sh $${FUZZTIME:-10s}

e2e: deps ## only the end-to-end tests (real ssh client, sshd, psql, asciinema, chromium)
	$(GO) test -race -count=1 -run 'E2E' -v $(PKGS)

compat: deps ## pgx's and lib/pq's own test suites, directly and through the database tunnel (COMPAT_SHORT=1: a subset)
	scripts/compat.sh

bench: deps build ## Go benchmarks plus end-to-end figures side by side with OpenSSH sshd and direct Postgres
	$(GO) test -run '^$$' -bench . -benchtime 2000x -benchmem ./shellpolicy/... ./masking/... ./recordings/... ./audit/...
	@scripts/bench.sh

.PHONY: help deps build demo test vet lint fuzz e2e compat bench
