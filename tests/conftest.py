import os

import pytest

# Clouds the tests start in processes of their own (loom up) take a free
# port for their console proxy: Nova's 6080 may belong to another run.
os.environ.setdefault("LOOM_CONSOLE__PORT", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tier markers follow the directory, so `-m unit` and friends work;
    # tests that boot real guests are marked qemu (scripts/test.sh runs
    # them beside the others).
    for item in items:
        for tier in ("unit", "functional", "integration"):
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))
        if "/tests/integration/" in str(item.path) and "qemu" in item.path.name:
            item.add_marker(pytest.mark.qemu)
