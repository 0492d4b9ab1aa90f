# The two commands of the README, plus benchmarks. Each target provisions what it needs
# (scripts/setup.sh is idempotent and cheap once the venv exists).
.PHONY: demo test bench setup api

setup:
	@bash scripts/setup.sh

demo: setup
	cargo run -q -- run scripts/demo.rhai

test:
	@bash scripts/setup.sh --test
	cargo test

api: setup
	cargo run -q -- api > docs/api.md

# Release build first so the start-up measurement uses the optimised binary.
bench:
	@bash scripts/setup.sh --test
	cargo build --release -q
	bash scripts/bench.sh
