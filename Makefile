# whipcast: `make test` runs every test; see README.md.
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps build release test bench fuzz clean

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --workspace --release

test: deps
	$(CARGO) build --workspace
	$(CARGO) test --workspace

bench: deps
	$(CARGO) bench -p whipcast-tests --bench av1_depay

clean:
	$(CARGO) clean
