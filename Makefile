# eventsource-native: one Rust core, four faces. `make help` lists the targets.
# Language detail lives in ffi-c/Makefile, py/Makefile and node/Makefile.

SHELL := /bin/bash
CARGO ?= cargo
FACES := ffi-c py node
TESTSERVER := target/debug/testserver
DEMO_EVENTS ?= 5
SOAK_MINUTES ?= 10
export CARGO_TERM_COLOR ?= never

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: help all build test demo bench bench-report scale header lint fmt rust-test clean-venvs dist test-dist install reliability soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

all: test ## what CI runs (.ci/run)

build: ## build the core, the testserver, the examples and every face
	$(CARGO) build -p eventsource-core -p testserver -p examples
	@for f in $(FACES); do $(MAKE) -C $$f build || exit 1; done

lint: ## rustfmt and clippy (-D warnings) over the whole workspace
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the Rust code
	$(CARGO) fmt --all

rust-test: ## cargo test: core (parser, integration against the testserver), testserver, examples, ffi-c
	$(CARGO) test --workspace --exclude eventsource-py --exclude eventsource-node --exclude eventsource-bench
	@echo "== the behaviour tests again, on the lean transport"
	ES_TEST_TRANSPORT=lean $(CARGO) test -p eventsource-core --test client --test production

test: lint rust-test ## every suite: lint, cargo test, C tests + stale header, pytest, node --test, reliability, test-dist
	$(CARGO) build -p testserver -p examples
	@for f in $(FACES); do $(MAKE) -C $$f test || exit 1; done
	$(MAKE) reliability
	$(MAKE) test-dist

# The release artifacts. Each face's Makefile builds its own: ffi-c (the C tarball), node (the
# npm tarballs), py (the wheel and the sdist); the core crate comes from `cargo package`, which
# also builds it from the packed copy.
dist: ## every release artifact into dist/, with SHA256SUMS (see README "Install")
	rm -rf dist && mkdir -p dist
	$(MAKE) -C ffi-c dist
	$(MAKE) -C node dist
	$(MAKE) -C py dist
	$(CARGO) package -q -p eventsource-core --allow-dirty
	cp target/package/eventsource-core-$(VERSION).crate dist/
	cd dist && sha256sum * > SHA256SUMS
	@ls -l dist

PREFIX ?= /usr/local
install: ## the C library (release build), header, pkg-config and CMake files under PREFIX (DESTDIR too)
	$(MAKE) -C ffi-c install PREFIX=$(abspath $(PREFIX))

test-dist: dist ## make dist, then install each artifact with no Rust on PATH and stream through it
	$(CARGO) build -q -p testserver
	cd dist && sha256sum -c --quiet SHA256SUMS
	rm -rf target/install-test && $(MAKE) -s -C ffi-c install-files PREFIX=$(CURDIR)/target/install-test
	ES_INSTALLED_PREFIX=$(CURDIR)/target/install-test bash packaging/test-dist.sh dist target/debug/testserver

# The core's fault, exactly-once, leak and race tests run in rust-test; this adds the faces.
reliability: ## exactly once through every face's tail across dropped connections (short form; faces built)
	python3 reliability/exactly_once.py --events 3000 --drops 6

soak: ## the long reliability runs (SOAK_MINUTES=N, default 10, for the fault suite's repeats) → bench/RELIABILITY.md
	$(CARGO) build -p testserver -p examples
	$(CARGO) test -p eventsource-core --test exactly_once --test leaks --test faults --no-run
	$(MAKE) -C ffi-c c-programs
	$(MAKE) -C py build
	$(MAKE) -C node build
	python3 reliability/soak.py --minutes $(SOAK_MINUTES)

header: ## regenerate include/eventsource.h with cbindgen
	$(MAKE) -C ffi-c header

# The demo: one testserver on loopback, one finite stream tailed by each face in turn.
demo: ## start the bundled SSE server and stream from it with the Rust, C, Python and Node examples
	$(CARGO) build -q --release -p testserver -p examples
	@for f in $(FACES); do $(MAKE) -s -C $$f build >/dev/null || exit 1; done
	@set -e; \
	coproc TS { exec target/release/testserver --exit-on-eof; }; \
	read -r line <&"$${TS[0]}"; port=$${line##*:}; \
	url="http://127.0.0.1:$$port/stream?count=$(DEMO_EVENTS)&size=48&rate=20&id=1"; \
	echo "== testserver: $$line"; \
	echo "== Rust:   tail $$url"; target/release/tail "$$url" --max-events $(DEMO_EVENTS); \
	for f in $(FACES); do echo "== $$f:"; CARGO_TERM_QUIET=true $(MAKE) -s -C $$f demo URL="$$url" MAX_EVENTS=$(DEMO_EVENTS); done; \
	kill $$TS_PID 2>/dev/null || true

# One writer of bench/RESULTS.md: bench/report/report.py runs every benchmark (each face's
# `make -C FACE bench` with BENCH_JSON, the Rust bins with --json, `make -C FACE scale`),
# then rewrites the page and bench/charts/ from the run directory. Its tools (matplotlib and the
# Python peers) live in .venv-bench.
BENCH_VENV := $(CURDIR)/.venv-bench

$(BENCH_VENV)/.report:
	$(MAKE) -C py $(BENCH_VENV)/.tools
	$(BENCH_VENV)/bin/python -m pip install -q "matplotlib>=3.8,<4"
	touch $@

bench-report: $(BENCH_VENV)/.report ## every face against its peers, fresh (< 30 min) → bench/RESULTS.md + bench/charts
	$(BENCH_VENV)/bin/python bench/report/report.py --profile full --out bench --run-dir target/bench-report

bench: $(BENCH_VENV)/.report ## the same benchmarks, quick profile (a few minutes) → target/bench-report-quick/page
	$(BENCH_VENV)/bin/python bench/report/report.py --profile quick --out target/bench-report-quick/page \
		--run-dir target/bench-report-quick

SCALE_ARGS ?=
scale: ## scale and latency of every face against its peers → target/bench-report/scale-*.jsonl (SCALE_ARGS=--quick)
	$(CARGO) build --release -p testserver
	$(CARGO) build --profile bench -p eventsource-bench --bin scale
	mkdir -p target/bench-report && rm -f target/bench-report/scale-rust.jsonl
	target/release/scale $(SCALE_ARGS) --json target/bench-report/scale-rust.jsonl
	@for f in $(FACES); do $(MAKE) -C $$f scale SCALE_ARGS="$(SCALE_ARGS)" || exit 1; done

# Proofs beyond the tests: fuzzing (cargo-fuzz, libFuzzer) and loom. `make test` replays the
# fuzz corpus (tests/fuzz_corpus.rs, in rust-test) and runs the loom models.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := parser_diff http1_decoder scan

.PHONY: fuzz fuzz-short loom tsan

fuzz: ## run each fuzz target for FUZZ_SECONDS (default 60) with cargo-fuzz; new inputs go to fuzz/work
	@command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz"; exit 1; }
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$t; \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		(cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t work/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1); \
	done

fuzz-short: ## replay the checked-in fuzz corpus and the crashes found through the fuzz checks (no cargo-fuzz)
	$(CARGO) test -p eventsource-core --test fuzz_corpus --test fuzz_regressions

tsan: ## the C tests under ThreadSanitizer with the library and std instrumented (nightly + rust-src)
	$(MAKE) -C ffi-c tsan

# Its own target dir: the cfg changes every crate's build.
loom: ## loom: every interleaving of the chunk counts of core/src/text.rs
	RUSTFLAGS="--cfg eventsource_loom" $(CARGO) test -p eventsource-core --no-default-features \
		--target-dir target/loom --lib loom

test: loom
