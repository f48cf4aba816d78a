# The two entry points README.md promises.
.PHONY: up test install lint bench guest deploy deploy-stop

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

# The tiny test guest the qemu driver boots (.loom/guest/loom-test-guest.qcow2).
guest:
	./scripts/build-test-guest.sh .loom/guest

# A local multi-process cloud on PostgreSQL and RabbitMQ (docs/distributed.md).
deploy:
	./scripts/deploy-local.sh

deploy-stop:
	./scripts/deploy-stop.sh
