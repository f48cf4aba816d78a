"""Quota limit resolution, checks and the microversion views, as pure
functions (no database)."""

from __future__ import annotations

import pytest

from loom.api.compute import limits as limits_api
from loom.api.compute.microversion import parse
from loom.api.compute.quota_sets import limit_value, parse_limits
from loom.config import QuotaSettings, load_settings
from loom.errors import Invalid
from loom.objects import quotas

NOVA_DEFAULTS = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
    "fixed_ips": -1,
    "floating_ips": -1,
    "security_groups": -1,
    "security_group_rules": -1,
}


def test_config_defaults_are_novas() -> None:
    assert quotas.config_defaults(QuotaSettings()) == NOVA_DEFAULTS


def test_environment_overrides_a_default() -> None:
    settings = load_settings(environ={"LOOM_QUOTA__INSTANCES": "3", "LOOM_QUOTA__INJECTED_FILE_PATH_LENGTH": "-1"})
    values = quotas.config_defaults(settings.quota)
    assert values["instances"] == 3 and values["injected_file_path_bytes"] == -1 and values["cores"] == 20


def test_the_most_specific_limit_wins() -> None:
    config = quotas.config_defaults(QuotaSettings())
    klass = {"instances": 7, "cores": 30, "ram": 1000}
    project = {"instances": 5, "cores": -1}
    user = {"instances": 2}
    resolved = quotas.resolve(config, klass, project, user)
    assert resolved["instances"] == 2  # user
    assert resolved["cores"] == -1  # project (unlimited)
    assert resolved["ram"] == 1000  # quota class
    assert resolved["key_pairs"] == 100  # configuration
    assert quotas.resolve(config, klass, project)["instances"] == 5
    ignored = quotas.resolve(config, {"bogus": 1})
    assert ignored["instances"] == 10 and "bogus" not in ignored


@pytest.mark.parametrize(
    ("version", "gone"),
    [
        ("2.1", set()),
        ("2.35", set()),
        ("2.36", set(quotas.NETWORK)),
        ("2.56", set(quotas.NETWORK)),
        ("2.57", set(quotas.NETWORK) | set(quotas.PERSONALITY)),
        ("2.79", set(quotas.NETWORK) | set(quotas.PERSONALITY)),
    ],
)
def test_quota_sets_hide_by_microversion(version: str, gone: set[str]) -> None:
    assert quotas.hidden(parse(version)) == gone
    assert quotas.updatable(parse(version)) == set(quotas.RESOURCES) - gone


def test_quota_classes_hide_groups_before_2_50_but_accept_them() -> None:
    assert quotas.hidden_in_class(parse("2.49")) == set(quotas.GROUPS)
    assert set(quotas.GROUPS) <= quotas.updatable_in_class(parse("2.49"))
    assert set(quotas.NETWORK) <= quotas.updatable_in_class(parse("2.49"))
    assert quotas.hidden_in_class(parse("2.50")) == set(quotas.NETWORK)
    assert quotas.hidden_in_class(parse("2.57")) == set(quotas.NETWORK) | set(quotas.PERSONALITY)
    assert not set(quotas.PERSONALITY) & quotas.updatable_in_class(parse("2.57"))


def test_overs_are_sorted_and_unlimited_is_never_over() -> None:
    limits = {"instances": 1, "cores": 2, "ram": -1}
    assert quotas.overs(limits, {"instances": 2, "cores": 3, "ram": 10**9}) == ["cores", "instances"]
    assert quotas.overs(limits, {"instances": 1, "cores": 2, "ram": 1}) == []
    assert quotas.overs({"instances": 0}, {"instances": 1}) == ["instances"]


def test_too_many_instances_reads_like_nova() -> None:
    exc = quotas.too_many_instances(["instances"], {"instances": 1}, {"instances": 10}, {"instances": 10})
    assert exc.message == "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
    assert exc.status == 403 and exc.details["resource"] == "instances"
    exc = quotas.too_many_instances(
        ["cores", "ram"], {"cores": 4, "ram": "2-3"}, {"cores": 18, "ram": 0}, {"cores": 20, "ram": 100}
    )
    assert exc.message == (
        "Quota exceeded for cores, ram: Requested 4, 2-3, but already used 18, 0 of 20, 100 cores, ram"
    )


def test_room_for_more_instances() -> None:
    limits = {"instances": 10, "cores": 20, "ram": 51200}
    assert quotas.room(limits, {"instances": 2, "cores": 16, "ram": 0}, vcpus=2, memory_mb=512) == 2
    assert quotas.room(limits, {"instances": 9, "cores": 0, "ram": 0}, vcpus=1, memory_mb=512) == 1
    assert quotas.room(limits, {"instances": 12, "cores": 0, "ram": 0}, vcpus=1, memory_mb=512) == 0
    assert quotas.room({"instances": -1, "cores": -1, "ram": -1}, {}, vcpus=1, memory_mb=1) is None


def test_settable_bounds_for_projects_and_users() -> None:
    # A project's limit: at least its usage and its users' limits together.
    assert quotas.bounds(10, in_use=3, users_total=5) == (5, -1)
    assert quotas.bounds(10, in_use=7, users_total=5) == (7, -1)
    assert quotas.bounds(-1, in_use=2, users_total=5) == (2, -1)
    # A user's: at most what the project leaves beside the other users.
    assert quotas.bounds(10, in_use=1, users_total=6, own=4, for_user=True) == (1, 8)
    assert quotas.bounds(10, in_use=1, users_total=0, for_user=True) == (1, 10)
    assert quotas.bounds(-1, in_use=1, users_total=6, own=4, for_user=True) == (1, -1)


def test_check_bounds_messages() -> None:
    quotas.check_bounds("instances", -1, 3, -1)
    quotas.check_bounds("instances", 3, 3, 10)
    with pytest.raises(
        Invalid,
        match=r"^Quota limit 2 for instances must be greater than or equal to already "
        r"used and reserved 3\.$",
    ):
        quotas.check_bounds("instances", 2, 3, -1)
    with pytest.raises(Invalid, match=r"^Quota limit 11 for cores must be less than or equal to 10\.$"):
        quotas.check_bounds("cores", 11, 0, 10)
    with pytest.raises(Invalid, match="less than or equal to 10"):
        quotas.check_bounds("cores", -1, 0, 10)


def test_limit_values_as_novas_schema_takes_them() -> None:
    assert limit_value("instances", 5) == 5
    assert limit_value("instances", "7") == 7
    assert limit_value("instances", -1) == -1
    for bad, why in (
        (-2, "less than the minimum of -1"),
        (2**31, "greater than the maximum of 2147483647"),
        ("abc", "does not match"),
        (True, "is not of type"),
        (1.5, "is not of type"),
        (None, "type"),
    ):
        with pytest.raises(Invalid, match=why) as caught:
            limit_value("instances", bad)
        assert caught.value.message.startswith("Invalid input for field/attribute instances.")


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(Invalid, match=r"Additional properties are not allowed \('bogus' was unexpected\)"):
        parse_limits({"instances": 1, "bogus": 2}, "quota_set", {"instances"})
    assert parse_limits({"instances": "3", "force": "true"}, "quota_set", {"instances"}, {"force"}) == {
        "instances": 3,
        "force": "true",
    }


NETWORK_LIMITS = {
    "maxSecurityGroups",
    "maxSecurityGroupRules",
    "maxTotalFloatingIps",
    "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
}
ALWAYS = {
    "maxTotalInstances",
    "maxTotalCores",
    "maxTotalRAMSize",
    "maxTotalKeypairs",
    "maxServerMeta",
    "maxServerGroups",
    "maxServerGroupMembers",
    "totalInstancesUsed",
    "totalCoresUsed",
    "totalRAMUsed",
    "totalServerGroupsUsed",
}
PERSONALITY_LIMITS = {"maxPersonality", "maxPersonalitySize"}


@pytest.mark.parametrize(
    ("version", "names"),
    [
        ("2.1", ALWAYS | NETWORK_LIMITS | PERSONALITY_LIMITS | {"maxImageMeta"}),
        ("2.35", ALWAYS | NETWORK_LIMITS | PERSONALITY_LIMITS | {"maxImageMeta"}),
        ("2.36", ALWAYS | PERSONALITY_LIMITS | {"maxImageMeta"}),
        ("2.39", ALWAYS | PERSONALITY_LIMITS),
        ("2.57", ALWAYS),
    ],
)
def test_absolute_limits_by_microversion(version: str, names: set[str]) -> None:
    limits = quotas.resolve(NOVA_DEFAULTS, {"instances": 4})
    used = dict.fromkeys(quotas.RESOURCES, 0) | {"instances": 2, "cores": 2, "ram": 1024}
    absolute = limits_api.absolute(limits, used, parse(version))
    assert set(absolute) == names
    assert absolute["maxTotalInstances"] == 4 and absolute["totalInstancesUsed"] == 2
    assert absolute["totalRAMUsed"] == 1024 and absolute["maxServerMeta"] == 128
