import os

import pytest

# Clouds the tests start in processes of their own (loom up) take a free
# port for their console proxy: Nova's 6080 may belong to another run.
os.environ.setdefault("LOOM_CONSOLE__PORT", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tier markers follow the directory, so `-m unit` and friends work.
    for item in items:
        for tier in ("unit", "functional", "integration"):
            if f"/tests/{tier}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))
