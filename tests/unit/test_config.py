"""Settings: defaults, then a TOML file, then LOOM_* variables, then
explicit overrides, each source winning over the ones before it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from loom.config import BusSettings, Settings, load_settings
from loom.errors import Invalid


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loom.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.data_dir == Path(".loom")
    assert settings.database.url == ""
    assert settings.bus.url == "memory://"
    assert settings.bus.rpc_timeout == 60.0
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 8774
    assert settings.service.host == socket.gethostname()
    assert settings.log.level == "INFO"


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
data_dir = "/srv/loom"

[bus]
url = "amqp://rabbit/"

[api]
port = 9000
""")
    settings = load_settings(path, environ={})
    assert settings.data_dir == Path("/srv/loom")
    assert settings.bus.url == "amqp://rabbit/"
    # Keys the file does not name keep their defaults, even in its sections.
    assert settings.bus.rpc_timeout == 60.0
    assert settings.api.port == 9000
    assert settings.api.host == "127.0.0.1"


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
data_dir = "/from/file"

[bus]
url = "amqp://file/"
rpc_timeout = 5
""")
    settings = load_settings(path, environ={
        "LOOM_DATA_DIR": "/from/env",
        "LOOM_BUS__URL": "amqp://env/",
        "LOOM_API__PORT": "9999",
        "LOOM_LOG__DEBUG": "true",
    })
    assert settings.data_dir == Path("/from/env")
    assert settings.bus.url == "amqp://env/"
    assert settings.bus.rpc_timeout == 5.0
    assert settings.api.port == 9999
    assert settings.log.debug is True


def test_explicit_overrides_win(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[bus]\nurl = "amqp://file/"\n')
    settings = load_settings(
        path,
        environ={"LOOM_BUS__URL": "amqp://env/", "LOOM_API__PORT": "9999"},
        overrides={"bus.url": "memory://flag", "data_dir": str(tmp_path), "api.port": None},
    )
    assert settings.bus.url == "memory://flag"
    assert settings.data_dir == tmp_path
    # A flag that was not given (None) does not hide the lower sources.
    assert settings.api.port == 9999


def test_unrelated_loom_variables_are_ignored() -> None:
    settings = load_settings(environ={
        "LOOM_TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "LOOM_TEST_POSTGRES_URL": "postgresql://loom@127.0.0.1/loom_test",
        "LOOM_": "x",
        "PATH": "/usr/bin",
    })
    assert settings == Settings()


@pytest.mark.parametrize("value", ["70000", "-1", "eighty"])
def test_bad_port_names_the_field(value: str) -> None:
    with pytest.raises(Invalid, match=r"api\.port"):
        load_settings(environ={"LOOM_API__PORT": value})


def test_unknown_key_in_toml_names_the_field(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[bus]\nurll = \"amqp://typo/\"\n")
    with pytest.raises(Invalid, match=r"bus\.urll"):
        load_settings(path, environ={})


def test_unknown_section_in_toml_names_it(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[buss]\nurl = \"amqp://typo/\"\n")
    with pytest.raises(Invalid, match="buss"):
        load_settings(path, environ={})


def test_unknown_key_in_a_known_section_of_the_environment_is_refused() -> None:
    with pytest.raises(Invalid, match=r"bus\.nope"):
        load_settings(environ={"LOOM_BUS__NOPE": "1"})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="does not exist"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_malformed_config_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[bus\nurl = \n")
    with pytest.raises(Invalid, match="not valid TOML"):
        load_settings(path, environ={})


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"LOOM_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'loom.db'}"


def test_database_url_relative_data_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / '.loom' / 'loom.db'}"


def test_explicit_database_url_is_used_as_given() -> None:
    url = "postgresql://loom:secret@db.example/loom"
    settings = load_settings(environ={"LOOM_DATABASE__URL": url, "LOOM_DATA_DIR": "/elsewhere"})
    assert settings.database_url == url


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ({}, "http://127.0.0.1:8774"),
        ({"host": "10.0.0.5", "port": 9000}, "http://10.0.0.5:9000"),
        # A wildcard bind address is not somewhere a client can connect to.
        ({"host": "0.0.0.0"}, "http://127.0.0.1:8774"),
        ({"host": "::"}, "http://127.0.0.1:8774"),
        ({"public_url": "https://cloud.example/compute/"}, "https://cloud.example/compute"),
    ],
)
def test_public_url(api: dict[str, object], expected: str) -> None:
    assert Settings().replace(api=api).public_url == expected


def test_replace_dotted_keys_returns_a_new_copy() -> None:
    original = Settings()
    changed = original.replace(**{"bus.url": "amqp://x/", "api.port": 1234})
    assert changed.bus.url == "amqp://x/"
    assert changed.api.port == 1234
    assert changed.bus.rpc_timeout == original.bus.rpc_timeout
    assert original.bus.url == "memory://"
    assert original.api.port == 8774


def test_replace_a_section_with_a_mapping_merges_into_it() -> None:
    changed = Settings().replace(bus={"url": "amqp://x/"})
    assert changed.bus == BusSettings(url="amqp://x/")


def test_replace_a_section_with_a_model_replaces_it() -> None:
    section = BusSettings(url="amqp://x/", rpc_timeout=5)
    assert Settings().replace(bus=section).bus == section


def test_replace_validates() -> None:
    with pytest.raises((ValidationError, Invalid), match=r"api\.port"):
        Settings().replace(**{"api.port": 70000})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.bus.url = "amqp://x/"  # type: ignore[misc]
