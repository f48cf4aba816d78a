"""The identity API through the stock CLI: a first smoke pass."""

from __future__ import annotations

from tests.functional.cloud import Cloud


def test_token_issue_and_catalog(cloud: Cloud) -> None:
    token = cloud.openstack("token", "issue")
    assert token["id"] and token["project_id"] and token["user_id"]
    catalog = cloud.openstack("catalog", "list")
    assert any(entry["Type"] == "identity" for entry in catalog)
