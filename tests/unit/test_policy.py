"""The policy engine: oslo.policy check strings, default rules, operator
overrides from a YAML file reloaded when it changes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from loom.context import RequestContext
from loom.errors import Forbidden, Invalid, LoomError
from loom.policy import (
    ADMIN,
    ADMIN_OR_PROJECT_MANAGER,
    ADMIN_OR_PROJECT_MEMBER,
    ADMIN_OR_PROJECT_READER,
    PROJECT_MEMBER,
    PROJECT_READER,
    DuplicatePolicy,
    Enforcer,
    PolicyNotRegistered,
    Rule,
    credentials_of,
    parse,
)
from loom.policy import rules as rules_module
from loom.policy.rules import Check


def check(
    check_str: str,
    creds: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    table: Mapping[str, str] | None = None,
) -> bool:
    """Parse and evaluate one check string, as the enforcer would."""
    rules = {name: parse(text, name) for name, text in (table or {}).items()}
    return parse(check_str).evaluate(credentials_of(creds or {}), target or {}, rules, ())


MEMBER = {"roles": ["member", "reader"], "user_id": "u1", "project_id": "p1", "domain_id": "d1"}


# --- always / never -----------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "@", "(@)", "@ or !"])
def test_always_passes(text: str) -> None:
    assert check(text) is True


@pytest.mark.parametrize("text", ["!", "(!)", "! and @", "not @"])
def test_never_passes(text: str) -> None:
    assert check(text, MEMBER) is False


# --- role: --------------------------------------------------------------------


def test_role_check() -> None:
    assert check("role:member", MEMBER)
    assert not check("role:admin", MEMBER)
    assert not check("role:member", {})


@pytest.mark.parametrize(
    ("rule_role", "held_role"), [("Admin", "admin"), ("admin", "ADMIN"), ("aDmIn", "AdMiN")]
)
def test_role_check_ignores_case(rule_role: str, held_role: str) -> None:
    assert check(f"role:{rule_role}", {"roles": [held_role]})


def test_role_check_with_target_substitution() -> None:
    assert check("role:%(required)s", MEMBER, {"required": "Member"})
    assert not check("role:%(required)s", MEMBER, {"required": "admin"})
    assert not check("role:%(required)s", MEMBER, {})


def test_role_name_may_hold_a_colon() -> None:
    assert check("role:compute:admin", {"roles": ["compute:admin"]})
    assert not check("role:compute:admin", {"roles": ["compute"]})


# --- generic checks -----------------------------------------------------------


def test_is_admin() -> None:
    assert check("is_admin:True", {"is_admin": True})
    assert not check("is_admin:True", {"is_admin": False})
    assert not check("is_admin:True", {})
    assert check("is_admin:False", {"is_admin": False})


def test_credential_equals_literal() -> None:
    assert check("system_scope:all", {"system_scope": "all"})
    assert not check("system_scope:all", {"system_scope": "project"})
    assert not check("system_scope:all", {})


@pytest.mark.parametrize("value", ["'my project'", '"my project"'])
def test_quoted_literal_may_hold_spaces(value: str) -> None:
    assert check(f"project_name:{value}", {"project_name": "my project"})
    assert not check(f"project_name:{value}", {"project_name": "'my project'"})
    assert check(f"(project_name:{value} and role:member)", {**MEMBER, "project_name": "my project"})


def test_quoted_literal_is_not_substituted() -> None:
    assert check("user_id:'%(user_id)s'", {"user_id": "%(user_id)s"}, {"user_id": "u1"})


def test_target_substitution() -> None:
    assert check("project_id:%(project_id)s", MEMBER, {"project_id": "p1"})
    assert not check("project_id:%(project_id)s", MEMBER, {"project_id": "p2"})


def test_target_values_compare_as_strings() -> None:
    assert check("user_id:%(owner)s", {"user_id": "42"}, {"owner": 42})
    assert check("is_admin:%(flag)s", {"is_admin": True}, {"flag": True})


def test_nested_target_substitution() -> None:
    target = {"target": {"user": {"domain_id": "d1"}}}
    assert check("domain_id:%(target.user.domain_id)s", MEMBER, target)
    assert not check("domain_id:%(target.user.domain_id)s", MEMBER, {"target": {"user": {"domain_id": "d2"}}})


def test_flat_dotted_target_key() -> None:
    assert check("domain_id:%(target.user.domain_id)s", MEMBER, {"target.user.domain_id": "d1"})
    # The flat key wins over a nested path naming the same thing.
    target = {"target.user.domain_id": "d1", "target": {"user": {"domain_id": "d2"}}}
    assert check("domain_id:%(target.user.domain_id)s", MEMBER, target)


@pytest.mark.parametrize(
    "target",
    [
        {},
        {"other": "p1"},
        {"target": {}},
        {"target": {"user": "not a dict"}},
        {"target": {"user": {"name": "x"}}},
        {"target": None},
    ],
)
def test_missing_target_key_fails(target: dict[str, Any]) -> None:
    assert not check("domain_id:%(target.user.domain_id)s", MEMBER, target)


def test_negated_missing_target_key_passes() -> None:
    # Only the check itself is false; ``not`` of it is true, as in oslo.
    assert check("not project_id:%(missing)s", MEMBER, {})


def test_none_never_matches_none() -> None:
    # oslo.policy compares "None" == "None" and passes; Loom fails closed.
    assert not check("project_id:%(project_id)s", {"project_id": None}, {"project_id": None})
    assert not check("project_id:%(project_id)s", {}, {"project_id": None})
    assert not check("project_id:%(project_id)s", {"project_id": "None"}, {"project_id": None})


def test_reverse_form_compares_literal_with_target() -> None:
    assert check("'member':%(role.name)s", {}, {"role": {"name": "member"}})
    assert not check("'member':%(role.name)s", {}, {"role": {"name": "admin"}})
    assert not check("'member':%(role.name)s", {}, {})
    assert check("True:%(user.enabled)s", {}, {"user": {"enabled": True}})
    assert not check("True:%(user.enabled)s", {}, {"user": {"enabled": False}})
    assert check('"member":%(name)s', {}, {"name": "member"})


def test_dotted_credential_key_walks_nested_credentials() -> None:
    creds = {"token": {"user": {"id": "u1"}, "groups": [{"id": "g1"}, {"id": "g2"}]}}
    assert check("token.user.id:u1", creds)
    assert check("token.groups.id:g2", creds)
    assert not check("token.groups.id:g3", creds)
    assert not check("token.missing.id:u1", creds)


def test_list_credential_matches_any_element() -> None:
    assert check("groups:g2", {"groups": ["g1", "g2"]})
    assert check("roles:member", MEMBER)


def test_substitution_inside_text() -> None:
    assert check("name:vm-%(project_id)s", {"name": "vm-p1"}, {"project_id": "p1"})
    assert check("quota:50%%", {"quota": "50%"})
    assert not check("name:vm-%(project_id)s", {"name": "vm-p1"}, {})


# --- operators ----------------------------------------------------------------


def roles(*names: str) -> dict[str, Any]:
    return {"roles": list(names)}


def test_and_or_not() -> None:
    assert check("role:a and role:b", roles("a", "b"))
    assert not check("role:a and role:b", roles("a"))
    assert check("role:a or role:b", roles("b"))
    assert not check("role:a or role:b", roles("c"))
    assert check("not role:a", roles("b"))
    assert not check("not role:a", roles("a"))
    assert check("not not role:a", roles("a"))


def test_and_binds_tighter_than_or() -> None:
    # a or (b and c)
    assert str(parse("role:a or role:b and role:c")) == "(role:a or (role:b and role:c))"
    assert check("role:a or role:b and role:c", roles("a"))
    assert not check("role:a or role:b and role:c", roles("b"))
    # (a and b) or c
    assert check("role:a and role:b or role:c", roles("c"))
    assert not check("role:a and role:b or role:c", roles("a"))


def test_not_binds_tighter_than_and() -> None:
    assert str(parse("not role:a and role:b")) == "(not role:a and role:b)"
    assert check("not role:a and role:b", roles("b"))
    assert not check("not role:a and role:b", roles("a", "b"))
    assert not check("not role:a and role:b", roles())


def test_parentheses_override_precedence() -> None:
    assert str(parse("(role:a or role:b) and role:c")) == "((role:a or role:b) and role:c)"
    assert not check("(role:a or role:b) and role:c", roles("a"))
    assert check("(role:a or role:b) and role:c", roles("b", "c"))
    assert check("not (role:a or role:b)", roles("c"))
    assert not check("not (role:a or role:b)", roles("b"))
    assert check("((role:a))", roles("a"))
    assert check("( role:a and ( role:b or role:c ) )", roles("a", "c"))


def test_keywords_ignore_case() -> None:
    assert check("role:a AND NOT role:b Or role:c", roles("c"))
    assert check("role:a AND NOT role:b Or role:c", roles("a"))
    assert not check("role:a AND NOT role:b Or role:c", roles("a", "b"))


def test_chains_flatten() -> None:
    assert str(parse("role:a or role:b or role:c or role:d")) == "(role:a or role:b or role:c or role:d)"
    assert str(parse("role:a and role:b and role:c")) == "(role:a and role:b and role:c)"


def test_substitution_parens_are_not_grouping() -> None:
    text = "(project_id:%(project_id)s and (user_id:%(user.id)s))"
    assert check(text, MEMBER, {"project_id": "p1", "user": {"id": "u1"}})
    assert not check(text, MEMBER, {"project_id": "p1", "user": {"id": "u2"}})


def test_common_defaults() -> None:
    admin = {"roles": ["admin", "manager", "member", "reader"], "project_id": "p9"}
    manager = {"roles": ["manager", "member", "reader"], "project_id": "p1"}
    member = {"roles": ["member", "reader"], "project_id": "p1"}
    reader = {"roles": ["reader"], "project_id": "p1"}
    mine, theirs = {"project_id": "p1"}, {"project_id": "p2"}

    assert check(ADMIN, admin, theirs)
    assert not check(ADMIN, member, mine)
    assert check(PROJECT_MEMBER, member, mine)
    assert not check(PROJECT_MEMBER, member, theirs)
    assert check(PROJECT_READER, member, mine)

    assert check(ADMIN_OR_PROJECT_MEMBER, admin, theirs)
    assert check(ADMIN_OR_PROJECT_MEMBER, member, mine)
    assert not check(ADMIN_OR_PROJECT_MEMBER, member, theirs)
    assert not check(ADMIN_OR_PROJECT_MEMBER, reader, mine)

    assert check(ADMIN_OR_PROJECT_READER, reader, mine)
    assert not check(ADMIN_OR_PROJECT_READER, reader, theirs)

    assert check(ADMIN_OR_PROJECT_MANAGER, manager, mine)
    assert not check(ADMIN_OR_PROJECT_MANAGER, member, mine)
    assert not check(ADMIN_OR_PROJECT_MANAGER, manager, theirs)


# --- rule: references ---------------------------------------------------------


def test_rule_reference() -> None:
    table = {"admin_required": "role:admin", "owner": "user_id:%(user_id)s"}
    assert check("rule:admin_required or rule:owner", MEMBER, {"user_id": "u1"}, table)
    assert not check("rule:admin_required or rule:owner", MEMBER, {"user_id": "u2"}, table)
    assert check("rule:admin_required", roles("admin"), {}, table)


def test_unknown_rule_fails_closed() -> None:
    assert not check("rule:nowhere", roles("admin"))
    assert check("not rule:nowhere", roles("admin"))
    assert check("rule:nowhere or role:admin", roles("admin"))


def test_rule_referring_to_itself_fails_closed() -> None:
    table = {"loop": "rule:loop", "loop_or_admin": "rule:loop_or_admin or role:admin"}
    assert not check("rule:loop", roles("admin"), {}, table)
    # Only the recursive branch fails; the rest of the rule still counts.
    assert check("rule:loop_or_admin", roles("admin"), {}, table)
    assert not check("rule:loop_or_admin", roles("member"), {}, table)


def test_mutual_recursion_fails_closed() -> None:
    table = {"a": "rule:b", "b": "rule:c or role:x", "c": "rule:a"}
    assert not check("rule:a", roles("admin"), {}, table)
    assert check("rule:a", roles("x"), {}, table)


def test_rule_referenced_twice_is_not_recursion() -> None:
    table = {"reader": "role:reader", "both": "rule:reader and (rule:reader or !)"}
    assert check("rule:both", roles("reader"), {}, table)


def test_references() -> None:
    assert sorted(parse("rule:a or (not rule:b and role:c)").references()) == ["a", "b"]


# --- parse errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "role:admin and",
        "role:admin or or role:member",
        "and role:admin",
        "(role:admin",
        "role:admin)",
        "()",
        "not",
        "role:a role:b",
        "admin",
        "role:",
        ":admin",
        "project_name:'unterminated",
        "'member'",
        "project_id:%(project_id)d",
        "project_id:%()s",
        "quota:50%",
        "http://policy.example.com/check",
        "https://policy.example.com/check",
    ],
)
def test_parse_error_names_rule_and_text(text: str) -> None:
    with pytest.raises(Invalid) as excinfo:
        parse(text, "compute:servers:create")
    assert "compute:servers:create" in excinfo.value.message
    assert repr(text) in excinfo.value.message
    assert excinfo.value.details == {"rule": "compute:servers:create", "check_str": text}


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(Invalid, match="r1"):
        parse(["role:admin"], "r1")  # type: ignore[arg-type]


def test_deep_nesting_is_invalid_not_a_crash() -> None:
    with pytest.raises(Invalid, match="deeply"):
        parse("(" * 500 + "role:a" + ")" * 500, "deep")
    with pytest.raises(Invalid, match="deeply"):
        parse("not " * 500 + "role:a", "deep")


def test_parsed_rule_is_reusable() -> None:
    parsed = parse(ADMIN_OR_PROJECT_MEMBER)
    assert isinstance(parsed, Check)
    for project, allowed in [("p1", True), ("p2", False), ("p1", True)]:
        assert parsed.evaluate(credentials_of(MEMBER), {"project_id": project}, {}, ()) is allowed


# --- credentials --------------------------------------------------------------


@dataclass(frozen=True)
class ScopedContext(RequestContext):
    system_scope: str | None = None


def test_credentials_from_request_context() -> None:
    ctx = RequestContext(user_id="u1", project_id="p1", domain_id="d1", roles=("Member", "READER"))
    assert credentials_of(ctx) == {
        "user_id": "u1",
        "project_id": "p1",
        "domain_id": "d1",
        "user_domain_id": None,
        "project_domain_id": None,
        "system_scope": None,
        "is_admin": False,
        "roles": frozenset({"member", "reader"}),
    }
    assert credentials_of(ScopedContext(roles=("admin",), system_scope="all"))["system_scope"] == "all"


def test_credentials_from_dict_keep_extra_keys() -> None:
    creds = credentials_of({"roles": ["Admin"], "project_id": "p1", "project_name": "demo"})
    assert creds == {
        "roles": frozenset({"admin"}),
        "project_id": "p1",
        "project_name": "demo",
        "is_admin": False,
    }
    assert credentials_of({"roles": "Reader"})["roles"] == frozenset({"reader"})
    assert credentials_of({"roles": None})["roles"] == frozenset()


# --- the enforcer -------------------------------------------------------------

DEFAULTS = [
    Rule("admin_api", ADMIN, "Administrators only."),
    Rule(
        "compute:servers:index",
        ADMIN_OR_PROJECT_READER,
        "List servers.\nReaders of the project may list its servers.",
        (("GET", "/servers"), ("GET", "/servers/detail")),
    ),
    Rule(
        "compute:servers:create",
        ADMIN_OR_PROJECT_MEMBER,
        "Create a server.",
        (("POST", "/servers"),),
    ),
    Rule("compute:servers:force_delete", "rule:admin_api"),
    Rule("system:reader", "role:reader and system_scope:all", "Read everything, system-wide."),
]

ADMIN_CTX = RequestContext(user_id="root", project_id="p0", roles=("admin", "manager", "member", "reader"))
MEMBER_CTX = RequestContext(user_id="u1", project_id="p1", roles=("member", "reader"))
READER_CTX = RequestContext(user_id="u2", project_id="p1", roles=("reader",))
MINE = {"project_id": "p1"}
THEIRS = {"project_id": "p2"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_policy(path: Path, rules: Mapping[str, str] | str, mtime: float | None = None) -> Path:
    path.write_text(rules if isinstance(rules, str) else yaml.safe_dump(dict(rules)))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_authorize_with_defaults() -> None:
    enforcer = Enforcer(DEFAULTS)
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, THEIRS)
    assert not enforcer.authorize("compute:servers:create", READER_CTX, MINE)
    assert enforcer.authorize("compute:servers:index", READER_CTX, MINE)
    assert enforcer.authorize("compute:servers:force_delete", ADMIN_CTX, THEIRS)
    assert not enforcer.authorize("compute:servers:force_delete", MEMBER_CTX, MINE)
    assert enforcer.authorize("admin_api", {"roles": ["ADMIN"]}, None)


def test_authorize_reads_system_scope() -> None:
    enforcer = Enforcer(DEFAULTS)
    assert enforcer.authorize("system:reader", ScopedContext(roles=("reader",), system_scope="all"), {})
    assert not enforcer.authorize("system:reader", READER_CTX, {})
    assert enforcer.authorize("system:reader", {"roles": ["reader"], "system_scope": "all"}, {})


def test_enforce_raises_forbidden_with_novas_wording() -> None:
    enforcer = Enforcer(DEFAULTS)
    enforcer.enforce("compute:servers:create", MEMBER_CTX, MINE)
    with pytest.raises(Forbidden) as excinfo:
        enforcer.enforce("compute:servers:create", MEMBER_CTX, THEIRS)
    assert excinfo.value.message == "Policy doesn't allow compute:servers:create to be performed."
    assert str(excinfo.value) == "Policy doesn't allow compute:servers:create to be performed."
    assert excinfo.value.status == 403


def test_unregistered_rule_is_a_programming_error() -> None:
    enforcer = Enforcer(DEFAULTS)
    for call in (enforcer.authorize, enforcer.enforce):
        with pytest.raises(PolicyNotRegistered, match="compute:servers:explode") as excinfo:
            call("compute:servers:explode", ADMIN_CTX, {})
        assert isinstance(excinfo.value, LoomError)
        assert not isinstance(excinfo.value, Forbidden)


def test_register_adds_defaults_later() -> None:
    enforcer = Enforcer(DEFAULTS)
    enforcer.register([Rule("image:images:upload", PROJECT_MEMBER)])
    assert enforcer.authorize("image:images:upload", MEMBER_CTX, MINE)
    assert list(enforcer.defaults) == [r.name for r in DEFAULTS] + ["image:images:upload"]


def test_registering_the_same_rule_twice_is_harmless() -> None:
    enforcer = Enforcer(DEFAULTS)
    enforcer.register([DEFAULTS[0], Rule("admin_api", ADMIN, "Described again.")])
    assert enforcer.authorize("admin_api", ADMIN_CTX, {})


def test_registering_a_conflicting_default_fails() -> None:
    enforcer = Enforcer(DEFAULTS)
    with pytest.raises(DuplicatePolicy, match="admin_api"):
        enforcer.register([Rule("admin_api", "@")])
    with pytest.raises(DuplicatePolicy, match="x"):
        Enforcer([Rule("x", "role:a"), Rule("x", "role:b")])
    assert not enforcer.authorize("admin_api", MEMBER_CTX, {})


def test_invalid_default_registers_nothing() -> None:
    enforcer = Enforcer(DEFAULTS)
    with pytest.raises(Invalid, match="volume:broken"):
        enforcer.register([Rule("volume:fine", "@"), Rule("volume:broken", "role:admin and")])
    assert "volume:fine" not in enforcer.defaults
    with pytest.raises(PolicyNotRegistered):
        enforcer.authorize("volume:fine", ADMIN_CTX, {})


def test_rules_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    enforcer = Enforcer(DEFAULTS)

    def no_parsing(*args: Any, **kwargs: Any) -> Check:
        raise AssertionError("parsed again")

    monkeypatch.setattr(rules_module, "parse", no_parsing)
    monkeypatch.setattr("loom.policy.enforcer.parse", no_parsing)
    for _ in range(3):
        assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)


def test_evaluation_is_fast() -> None:
    enforcer = Enforcer(DEFAULTS)
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    # A few microseconds each in practice; the bound only catches re-parsing
    # or similar blunders without being flaky on a loaded machine.
    assert (time.perf_counter() - start) / n < 100e-6


# --- the policy file ----------------------------------------------------------


def test_policy_file_overrides_a_default(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", {"compute:servers:create": "rule:admin_api"})
    enforcer = Enforcer(DEFAULTS, path)
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    assert enforcer.authorize("compute:servers:create", ADMIN_CTX, THEIRS)
    # Rules the file does not name keep their defaults.
    assert enforcer.authorize("compute:servers:index", READER_CTX, MINE)
    assert enforcer.check_str("compute:servers:create") == "rule:admin_api"
    assert enforcer.check_str("compute:servers:index") == ADMIN_OR_PROJECT_READER
    assert enforcer.check_str("nothing") is None


def test_policy_file_overrides_a_referenced_rule(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", {"admin_api": "role:admin or role:operator"})
    enforcer = Enforcer(DEFAULTS, path)
    operator = RequestContext(roles=("Operator",))
    assert enforcer.authorize("compute:servers:force_delete", operator, {})


def test_policy_file_may_add_aliases(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path / "policy.yaml",
        {
            "admin_required": "role:admin or is_admin:True",
            "owner": "user_id:%(user_id)s",
            "compute:servers:create": "rule:admin_required or rule:owner",
        },
    )
    enforcer = Enforcer(DEFAULTS, path)
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, {"user_id": "u1"})
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, {"user_id": "u9"})
    assert enforcer.authorize("compute:servers:create", RequestContext.for_service("conductor"), {})
    # An alias is for rule: references; code cannot enforce it directly.
    with pytest.raises(PolicyNotRegistered):
        enforcer.authorize("admin_required", ADMIN_CTX, {})


def test_empty_or_missing_policy_file_means_defaults(tmp_path: Path) -> None:
    for enforcer in (
        Enforcer(DEFAULTS, write_policy(tmp_path / "empty.yaml", "")),
        Enforcer(DEFAULTS, write_policy(tmp_path / "comments.yaml", "# nothing yet\n")),
        Enforcer(DEFAULTS, tmp_path / "absent.yaml"),
    ):
        assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)


def test_policy_file_rule_may_allow_everyone(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.yaml", '"compute:servers:create": ""\n"admin_api": "@"\n')
    enforcer = Enforcer(DEFAULTS, path)
    assert enforcer.authorize("compute:servers:create", READER_CTX, THEIRS)
    assert enforcer.authorize("compute:servers:force_delete", READER_CTX, THEIRS)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("compute:servers:create: [role:admin\n", "cannot be read"),
        ("- role:admin\n", "must map rule names"),
        ("compute:servers:create: 1\n", "compute:servers:create"),
        ("compute:servers:create:\n", "compute:servers:create"),
        ("compute:servers:create: [[role:admin]]\n", "compute:servers:create"),
        ('"compute:servers:create": "role:admin or"\n', "compute:servers:create"),
    ],
)
def test_invalid_policy_file_names_the_file(tmp_path: Path, text: str, why: str) -> None:
    path = write_policy(tmp_path / "broken-policy.yaml", text)
    with pytest.raises(Invalid) as excinfo:
        Enforcer(DEFAULTS, path)
    assert str(path) in excinfo.value.message
    assert why in excinfo.value.message


def test_policy_file_warns_about_unknown_references(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_policy(tmp_path / "policy.yaml", {"compute:servers:create": "rule:admin_requried"})
    with caplog.at_level(logging.WARNING, logger="loom.policy"):
        enforcer = Enforcer(DEFAULTS, path)
    assert "admin_requried" in caplog.text
    assert not enforcer.authorize("compute:servers:create", ADMIN_CTX, {})


# --- live reload --------------------------------------------------------------


def test_policy_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write_policy(tmp_path / "policy.yaml", {"compute:servers:create": "role:admin"}, mtime=1_000_000)
    enforcer = Enforcer(DEFAULTS, path, clock=clock)
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)

    write_policy(path, {"compute:servers:create": "role:member"}, mtime=1_000_010)
    # The file is looked at no more than once a second.
    clock.now += 0.5
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    clock.now += 0.6
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, THEIRS)
    assert enforcer.check_str("compute:servers:create") == "role:member"


def test_unchanged_policy_file_is_not_reparsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    path = write_policy(tmp_path / "policy.yaml", {"compute:servers:create": "role:admin"}, mtime=1_000_000)
    enforcer = Enforcer(DEFAULTS, path, clock=clock)

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read again")

    monkeypatch.setattr(yaml, "safe_load", no_reading)
    for _ in range(5):
        clock.now += 2
        assert enforcer.authorize("compute:servers:create", ADMIN_CTX, {})


def test_policy_file_created_then_removed(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "policy.yaml"
    enforcer = Enforcer(DEFAULTS, path, clock=clock)
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)

    write_policy(path, {"compute:servers:create": "!"})
    clock.now += 1.5
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)

    path.unlink()
    clock.now += 1.5
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)


def test_broken_edit_keeps_the_last_good_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    path = write_policy(tmp_path / "policy.yaml", {"compute:servers:create": "role:admin"}, mtime=1_000_000)
    enforcer = Enforcer(DEFAULTS, path, clock=clock)

    write_policy(path, {"compute:servers:create": "role:member and ("}, mtime=1_000_010)
    clock.now += 1.5
    with caplog.at_level(logging.ERROR, logger="loom.policy"):
        assert enforcer.authorize("compute:servers:create", ADMIN_CTX, {})
        assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    assert str(path) in caplog.text

    # An explicit reload reports the error to its caller.
    with pytest.raises(Invalid, match=r"policy\.yaml"):
        enforcer.reload()

    write_policy(path, {"compute:servers:create": "role:member"}, mtime=1_000_020)
    clock.now += 1.5
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)


# --- the sample file ----------------------------------------------------------


def test_generate_sample_lists_every_rule() -> None:
    enforcer = Enforcer(DEFAULTS)
    enforcer.register([Rule("network:ports:create", ADMIN_OR_PROJECT_MEMBER, "Create a port.")])
    sample = enforcer.generate_sample()

    for rule in enforcer.defaults.values():
        assert f'#"{rule.name}": ' in sample
    assert "# List servers.\n# Readers of the project may list its servers.\n" in sample
    assert "# GET /servers\n# GET /servers/detail\n" in sample
    assert "# POST /servers\n" in sample

    # Commented out, the file changes nothing; uncommented, it restates the defaults.
    assert yaml.safe_load(sample) is None
    rule_lines = [line[1:] for line in sample.splitlines() if line.startswith('#"')]
    assert yaml.safe_load("\n".join(rule_lines)) == {r.name: r.check_str for r in enforcer.defaults.values()}


def test_generated_sample_is_a_valid_policy_file(tmp_path: Path) -> None:
    sample = Enforcer(DEFAULTS).generate_sample()
    uncommented = "\n".join(line[1:] if line.startswith('#"') else line for line in sample.splitlines())
    path = write_policy(tmp_path / "policy.yaml", uncommented)
    enforcer = Enforcer(DEFAULTS, path)
    assert enforcer.authorize("compute:servers:create", MEMBER_CTX, MINE)
    assert not enforcer.authorize("compute:servers:create", MEMBER_CTX, THEIRS)
