# The two entry points README.md promises.
.PHONY: up test install lint bench

up:
	./scripts/install.sh
	.venv/bin/loom up

test:
	./scripts/test.sh

install:
	./scripts/install.sh

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python bench/bus.py
