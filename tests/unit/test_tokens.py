"""The Fernet key repository and the tokens encrypted with it."""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
from cryptography.fernet import Fernet

from loom.errors import LoomError, Unauthorized
from loom.identity.keys import STAGED, KeyRepository, KeyRepositoryError
from loom.identity.tokens import (
    AUTH_REQUIRED,
    TokenExpired,
    TokenPayload,
    TokenProvider,
    new_audit_id,
)

NOW = dt.datetime(2025, 11, 22, 12, 30, 15, 123456)
LATER = NOW + dt.timedelta(hours=1)


class FakeClock:
    """Monotonic time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path, clock: FakeClock) -> KeyRepository:
    repo = KeyRepository(tmp_path / "fernet-keys", clock=clock)
    repo.setup()
    return repo


@pytest.fixture
def provider(repo: KeyRepository) -> TokenProvider:
    return TokenProvider(repo)


def numbers(repo: KeyRepository) -> list[int]:
    return sorted(int(name) for name in os.listdir(repo.path) if name.isdigit())


def key_file(repo: KeyRepository, number: int) -> bytes:
    return (repo.path / str(number)).read_bytes()


def payload(**overrides: object) -> TokenPayload:
    fields: dict[str, object] = {
        "user_id": uuid.uuid4().hex,
        "methods": ("password",),
        "issued_at": NOW,
        "expires_at": LATER,
        "audit_ids": (new_audit_id(),),
    }
    fields.update(overrides)
    return TokenPayload(**fields)  # type: ignore[arg-type]


# -- key repository -----------------------------------------------------------


def test_setup_creates_a_private_directory_with_staged_and_primary_keys(repo: KeyRepository) -> None:
    assert numbers(repo) == [0, 1]
    assert stat.S_IMODE(os.stat(repo.path).st_mode) == 0o700
    for number in (0, 1):
        assert stat.S_IMODE(os.stat(repo.path / str(number)).st_mode) == 0o600
        Fernet(key_file(repo, number))  # a valid Fernet key
    assert repo.keys() == [key_file(repo, 1), key_file(repo, 0)]
    assert not [name for name in os.listdir(repo.path) if name.startswith(".tmp")]


def test_setup_is_idempotent(repo: KeyRepository) -> None:
    before = {number: key_file(repo, number) for number in numbers(repo)}
    repo.setup()
    assert {number: key_file(repo, number) for number in numbers(repo)} == before


def test_setup_finishes_a_repository_holding_only_a_staged_key(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.mkdir()
    staged = Fernet.generate_key()
    (path / "0").write_bytes(staged)
    repo = KeyRepository(path)
    repo.setup()
    assert numbers(repo) == [0, 1]
    assert key_file(repo, 1) == staged


def test_rotate_promotes_the_staged_key_and_stages_a_new_one(repo: KeyRepository) -> None:
    staged, primary = key_file(repo, 0), key_file(repo, 1)
    repo.rotate()
    assert numbers(repo) == [0, 1, 2]
    assert key_file(repo, 2) == staged
    assert key_file(repo, 1) == primary
    assert key_file(repo, 0) not in (staged, primary)
    assert repo.keys() == [staged, primary, key_file(repo, 0)]


def test_rotate_prunes_the_oldest_secondary_keys(repo: KeyRepository) -> None:
    for _ in range(4):
        repo.rotate()
    # max_active_keys=3 counts the staged key, as Keystone's does.
    assert numbers(repo) == [0, 4, 5]
    assert len(repo.keys()) == 3


def test_rotate_with_a_smaller_limit_keeps_staged_and_primary(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys", max_active_keys=2)
    repo.setup()
    repo.rotate()
    repo.rotate()
    assert numbers(repo) == [0, 3]


def test_a_limit_below_staged_plus_primary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        KeyRepository(tmp_path, max_active_keys=1)


def test_rotate_without_a_staged_key_is_refused(repo: KeyRepository) -> None:
    (repo.path / "0").unlink()
    with pytest.raises(KeyRepositoryError, match="no staged key"):
        repo.rotate()


def test_keys_pick_up_another_process_rotation_within_a_second(repo: KeyRepository, clock: FakeClock) -> None:
    before = repo.keys()
    other = KeyRepository(repo.path)  # the operator's rotation, elsewhere
    other.rotate()
    # Within the second the cached set is served without touching the disk...
    clock.now += 0.5
    assert repo.keys() == before
    # ...after it the rotation is seen.
    clock.now += 0.6
    assert repo.keys() == other.keys()
    assert repo.keys()[0] == before[-1]  # the old staged key is primary now


def test_snapshot_is_the_same_object_until_the_keys_change(repo: KeyRepository, clock: FakeClock) -> None:
    first = repo.snapshot()
    clock.now += 5
    assert repo.snapshot() is first
    repo.rotate()
    assert repo.snapshot() is not first


def test_files_that_are_not_keys_are_ignored(repo: KeyRepository) -> None:
    (repo.path / ".1.aB3dE").write_bytes(b"an rsync temporary file")
    (repo.path / "01").write_bytes(b"not canonical")
    (repo.path / "README").write_bytes(b"hello")
    fresh = KeyRepository(repo.path)
    assert fresh.keys() == [key_file(repo, 1), key_file(repo, 0)]


def test_a_corrupt_key_file_is_named_in_the_error(repo: KeyRepository) -> None:
    (repo.path / "1").write_bytes(b"this is not a fernet key")
    with pytest.raises(KeyRepositoryError, match=f"{repo.path / '1'}.*corrupt") as caught:
        KeyRepository(repo.path).keys()
    assert isinstance(caught.value, LoomError)


def test_an_unreadable_key_file_is_named_in_the_error(repo: KeyRepository) -> None:
    (repo.path / "7").mkdir()  # unreadable as a file even for root
    with pytest.raises(KeyRepositoryError, match=f"{repo.path / '7'}.*cannot be read"):
        KeyRepository(repo.path).keys()


def test_a_missing_or_empty_repository_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(KeyRepositoryError, match="run setup"):
        KeyRepository(tmp_path / "nowhere").keys()
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyRepositoryError, match="holds no keys"):
        KeyRepository(tmp_path / "empty").keys()


# -- tokens -------------------------------------------------------------------


SCOPES = {
    "unscoped": {},
    "project": {"project_id": uuid.uuid4().hex},
    "domain": {"domain_id": uuid.uuid4().hex},
    "system": {"system": "all"},
}
METHOD_SETS = [
    ("password",),
    ("token",),
    ("password", "token"),
    ("application_credential",),
    ("password", "totp"),
    ("totp", "password"),  # out of table order: kept as names, order kept
    ("password", "x-custom"),  # unknown method
]


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("methods", METHOD_SETS, ids="+".join)
def test_round_trip(provider: TokenProvider, scope: dict[str, str], methods: tuple[str, ...]) -> None:
    issued = payload(methods=methods, **scope)
    assert provider.decode(provider.issue(issued), now=NOW) == issued


def test_round_trip_of_a_token_obtained_with_a_token(provider: TokenProvider) -> None:
    issued = payload(
        methods=("password", "token"),
        audit_ids=(new_audit_id(), new_audit_id()),
        project_id=uuid.uuid4().hex,
    )
    assert provider.decode(provider.issue(issued), now=NOW) == issued


def test_round_trip_of_an_application_credential_token(provider: TokenProvider) -> None:
    issued = payload(
        methods=("application_credential",), project_id=uuid.uuid4().hex, app_cred_id=uuid.uuid4().hex
    )
    assert provider.decode(provider.issue(issued), now=NOW) == issued


@pytest.mark.parametrize(
    "user_id",
    [
        "admin-user",
        "",
        "ünïcödé-üser",
        uuid.uuid4().hex.upper(),  # hex, but packing would lower-case it
        str(uuid.uuid4()),  # dashed
        "0123456789abcdef0123456789abcdeg",  # 32 characters, not all hex
        "0123456789abcdef 123456789abcdef",  # fromhex would skip the space
        "x" * 64,
    ],
)
def test_ids_that_are_not_uuid_hex_survive(provider: TokenProvider, user_id: str) -> None:
    issued = payload(user_id=user_id, project_id=user_id, app_cred_id=user_id)
    assert provider.decode(provider.issue(issued), now=NOW) == issued


@pytest.mark.parametrize("audit_id", ["audit", "A" * 21 + "B", "!" * 22, "é" * 22, new_audit_id() + "x"])
def test_audit_ids_that_are_not_ours_survive(provider: TokenProvider, audit_id: str) -> None:
    issued = payload(audit_ids=(audit_id, new_audit_id()))
    assert provider.decode(provider.issue(issued), now=NOW) == issued


def test_times_keep_their_microseconds(provider: TokenProvider) -> None:
    issued = payload(issued_at=NOW.replace(microsecond=1), expires_at=LATER.replace(microsecond=999999))
    decoded = provider.decode(provider.issue(issued), now=NOW)
    assert decoded.issued_at == issued.issued_at
    assert decoded.expires_at == issued.expires_at
    assert decoded.issued_at.tzinfo is None


def test_aware_times_are_stored_as_naive_utc(provider: TokenProvider) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    issued = payload(issued_at=(NOW + dt.timedelta(hours=2)).replace(tzinfo=plus_two))
    assert provider.decode(provider.issue(issued), now=NOW).issued_at == NOW


def test_a_payload_has_at_most_one_scope() -> None:
    with pytest.raises(ValueError, match="one project"):
        payload(project_id="p", domain_id="d")


def test_tokens_are_short_and_url_safe(provider: TokenProvider) -> None:
    token = provider.issue(payload(project_id=uuid.uuid4().hex))
    assert len(token) <= 200
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_new_audit_ids_are_22_url_safe_characters() -> None:
    ids = {new_audit_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(audit_id) == 22 and "=" not in audit_id for audit_id in ids)


def test_expired_token(provider: TokenProvider) -> None:
    token = provider.issue(payload())
    assert provider.decode(token, now=LATER - dt.timedelta(microseconds=1)).expires_at == LATER
    for now in (LATER, LATER + dt.timedelta(days=1)):
        with pytest.raises(TokenExpired) as caught:
            provider.decode(token, now=now)
        assert isinstance(caught.value, Unauthorized)
        assert caught.value.message == AUTH_REQUIRED


def test_decode_checks_expiry_against_the_clock_by_default(provider: TokenProvider) -> None:
    past = dt.datetime(2001, 1, 1)
    with pytest.raises(TokenExpired):
        provider.decode(provider.issue(payload(issued_at=past, expires_at=past)))


URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flipped(char: str) -> str:
    """Another base64 character differing in its top bit, which is never
    one of the padding bits a decoder may ignore in the last character."""
    return URLSAFE[URLSAFE.index(char) ^ 32]


def tampered(token: str) -> list[str]:
    middle = len(token) // 2
    return [
        token[:middle] + flipped(token[middle]) + token[middle + 1 :],
        token[:-1] + flipped(token[-1]),
        token[:-4],
        token + "AAAA",
        "x" + token,
    ]


BAD_TOKENS: dict[str, Callable[[str], list[str]]] = {
    "tampered": tampered,
    "garbage": lambda token: ["", "garbage", "=", "é" * 40, "A" * 10000, "gAAAAA", str(uuid.uuid4())],
    "foreign key": lambda token: [Fernet(Fernet.generate_key()).encrypt(b"\x91\x01").decode()],
}


@pytest.mark.parametrize("make_bad", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_unauthorized_with_the_generic_message(
    provider: TokenProvider, make_bad: Callable[[str], list[str]]
) -> None:
    for bad in make_bad(provider.issue(payload())):
        with pytest.raises(Unauthorized) as caught:
            provider.decode(bad, now=NOW)
        assert type(caught.value) is Unauthorized, bad
        assert caught.value.message == AUTH_REQUIRED
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


HEX_ID = bytes(16)
UNREADABLE_PAYLOADS = [
    b"",
    b"\xc1",  # never used by msgpack
    msgpack.packb({"user_id": "u"}),
    msgpack.packb([1, 1, HEX_ID, 1, 2]),  # too short
    msgpack.packb([2, 1, HEX_ID, 1, 2, []]),  # a format this Loom does not know
    msgpack.packb([1, 1, HEX_ID, 1, 2, [], "p", "d"]),  # two scopes
    msgpack.packb([1, 1, 5, 1, 2, []]),  # user id of the wrong type
    msgpack.packb([1, 1, b"short", 1, 2, []]),
    msgpack.packb([1, 1, HEX_ID, 1.5, 2, []]),
    msgpack.packb([1, 1, HEX_ID, 2**63, 2, []]),  # beyond datetime
    msgpack.packb([1, [7], HEX_ID, 1, 2, []]),
    msgpack.packb([1, 1, HEX_ID, 1, 2, 7]),
    msgpack.packb([1, 1, HEX_ID, 1, 2, [], None, None, 3]),
    msgpack.packb([1, 1, HEX_ID, 1, 2, []]) + b"\x00",  # trailing bytes
]


@pytest.mark.parametrize("plaintext", UNREADABLE_PAYLOADS)
def test_a_validly_encrypted_payload_loom_cannot_read_is_unauthorized(
    repo: KeyRepository, provider: TokenProvider, plaintext: bytes
) -> None:
    token = Fernet(repo.keys()[0]).encrypt(plaintext).decode()
    with pytest.raises(Unauthorized) as caught:
        provider.decode(token, now=NOW)
    assert type(caught.value) is Unauthorized
    assert caught.value.message == AUTH_REQUIRED


def test_tokens_survive_rotations_until_their_key_is_pruned(repo: KeyRepository, clock: FakeClock) -> None:
    provider = TokenProvider(repo)
    issued = payload()
    token = provider.issue(issued)  # encrypted with key 1
    repo.rotate()  # keys 0, 1, 2
    assert provider.decode(token, now=NOW) == issued
    fresh = provider.issue(issued)
    assert provider.decode(fresh, now=NOW) == issued
    repo.rotate()  # keys 0, 2, 3: key 1 is pruned
    with pytest.raises(Unauthorized, match=AUTH_REQUIRED):
        provider.decode(token, now=NOW)
    assert provider.decode(fresh, now=NOW) == issued


def test_tokens_from_the_staged_key_decode(repo: KeyRepository, provider: TokenProvider) -> None:
    """Another host may have rotated first and already encrypt with what is
    still the staged key here."""
    issued = payload()
    token = provider.issue(issued)
    plaintext = Fernet(repo.keys()[0]).decrypt(token + "=" * (-len(token) % 4))
    from_ahead = Fernet(key_file(repo, STAGED)).encrypt(plaintext).decode()
    assert provider.decode(from_ahead, now=NOW) == issued


def test_a_provider_follows_a_rotation_made_by_another_process(
    repo: KeyRepository, provider: TokenProvider, clock: FakeClock
) -> None:
    issued = payload()
    token = provider.issue(issued)
    other = KeyRepository(repo.path)
    other.rotate()
    other.rotate()  # the key token was issued with is gone
    clock.now += 1.5
    with pytest.raises(Unauthorized):
        provider.decode(token, now=NOW)
    # New tokens use the new primary, which the other process can read.
    assert TokenProvider(other).decode(provider.issue(issued), now=NOW) == issued
