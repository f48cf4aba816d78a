"""Typed settings, built once at an entry point and passed down.

Sources, later ones winning: defaults, an optional TOML file, ``LOOM_*``
environment variables (``LOOM_DATA_DIR``, ``LOOM_DATABASE__URL``; a double
underscore separates a section from its key), then command-line flags.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loom.errors import Invalid

ENV_PREFIX = "LOOM_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    # Empty means "loom.db in the data directory".
    url: str = ""
    pool_size: int = 10
    echo: bool = False


class BusSettings(_Section):
    url: str = "memory://"
    rpc_timeout: float = Field(60.0, gt=0)
    # How long a send may wait for a lost broker connection to come back
    # before the caller gets an error instead.
    send_timeout: float = Field(30.0, gt=0)
    prefetch: int = Field(64, gt=0)


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8774, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    # Seconds an idle keep-alive connection stays open. Longer than the
    # stock CLI's 5 s status polling (`--wait`): at uvicorn's 5 s default a
    # poll could reuse a connection just as the server closed it.
    keep_alive_timeout: float = Field(75.0, gt=0)
    # The URL clients reach the API at; derived from host and port if empty.
    public_url: str = ""


class ServiceSettings(_Section):
    host: str = Field(default_factory=socket.gethostname)
    report_interval: float = Field(10.0, gt=0)
    # A service whose last heartbeat is older than this is reported down.
    down_time: float = Field(60.0, gt=0)
    periodic_jitter: float = Field(0.1, ge=0, le=1)
    shutdown_timeout: float = Field(60.0, gt=0)
    # Prometheus metrics listener of a process (GET /metrics); 0 is off.
    # The API serves /metrics on its own port too.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Seconds between counts of instances by state, in processes with the database.
    metrics_interval: float = Field(15.0, gt=0)
    # Once started, a service freezes what start-up made and collects its
    # first generation every this many allocations (loom/cmd/heap.py); 0
    # leaves Python's collector as it is.
    gc_threshold: int = Field(10_000, ge=0)


class IdentitySettings(_Section):
    token_expiration: int = Field(3600, gt=0)
    # bcrypt cost; each step doubles the time a password check takes.
    password_hash_rounds: int = Field(12, ge=4, le=31)
    # Empty means "fernet-keys in the data directory".
    key_dir: str = ""
    max_active_keys: int = Field(3, ge=2)
    region: str = "RegionOne"
    # Empty means: generate one at bootstrap and keep it in the data dir.
    admin_password: str = ""
    policy_file: str = ""
    # Validated tokens are cached this long at most; changes made anywhere
    # in the cloud drop the cache sooner (announced on the bus).
    cache_time: float = Field(30.0, ge=0)


class ImageSettings(_Section):
    # Empty means "images in the data directory".
    store_dir: str = ""
    # Per-project limits; -1 means no limit.
    quota_images: int = Field(100, ge=-1)
    quota_bytes: int = Field(1 << 40, ge=-1)
    max_image_size: int = Field(1 << 40, gt=0)
    # Largest virtual disk an image may claim (a sanity bound on headers).
    max_virtual_size: int = Field(16 << 40, gt=0)
    # An upload renews its lease this often; one whose lease expired died
    # with its process and is rolled back to queued.
    upload_lease: float = Field(30.0, gt=0)
    chunk_size: int = Field(1 << 20, ge=4096)
    # A fresh cloud gets a small public "demo" image to boot.
    demo_image: bool = True
    # The Image API that hosts without the database (compute hosts) call,
    # as the service user; empty: the catalog's public image endpoint.
    endpoint: str = ""


class ServiceUserSettings(_Section):
    """The credential with which a host without the database calls Loom's
    APIs (Nova's [service_user]); ``loom bootstrap`` creates the user, with
    the admin and service roles on the service project, when a password is set."""

    # Empty: the public URL's /identity/v3.
    auth_url: str = ""
    username: str = "loom"
    password: str = ""
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    # A token is renewed this many seconds before it expires (at most half
    # its lifetime), so that no call is sent with one about to expire.
    renew_before: float = Field(300.0, ge=0)


class ComputeSettings(_Section):
    driver: str = "fake"
    # How many fake hosts ``loom up`` runs (named <host>-1, <host>-2, ...);
    # 1 means one host named after the machine.
    fake_hosts: int = Field(1, ge=1)
    fake_vcpus: int = Field(16, ge=1)
    fake_memory_mb: int = Field(32768, ge=64)
    fake_disk_gb: int = Field(1000, ge=1)
    # Seconds a fake spawn takes, to look like a real hypervisor.
    fake_spawn_delay: float = Field(0.0, ge=0)
    # Keep each fake host's guests in a file under the data directory, so
    # they outlive the compute service as real guests do.
    fake_persist: bool = True
    # Seconds between comparisons of the hypervisor's power states with the
    # database's (Nova's default); 0 turns the sync off.
    sync_power_state_interval: float = Field(600.0, ge=0)
    # Seconds after which a resize or cold migration waiting in
    # VERIFY_RESIZE is confirmed automatically; 0 never.
    resize_confirm_window: float = Field(86400.0, ge=0)
    # Whether a resize may stay on the server's host (Nova's
    # allow_resize_to_same_host); a cold migration never does.
    allow_resize_to_same_host: bool = False
    # Seconds a deleted server stays SOFT_DELETED (restorable) before it is
    # reclaimed; 0 deletes at once (Nova's default).
    reclaim_instance_interval: float = Field(0.0, ge=0)
    # Seconds a shelved server keeps its host before it is offloaded; 0 at
    # once, -1 never (Nova's meaning).
    shelved_offload_time: float = Field(0.0, ge=-1)
    # Record an hourly instance usage audit per host (os-instance_usage_audit_log).
    instance_usage_audit: bool = False
    # Seconds between checks that each instance on a host holds the
    # allocation its flavor needs in placement (fixing any that do not); 0 off.
    heal_allocations_interval: float = Field(600.0, ge=0)
    # The qemu driver (driver = "qemu"; docs/qemu.md). Guests and cached
    # images live in qemu_state_dir (empty: "qemu" in the data directory).
    qemu_state_dir: str = ""
    # auto: KVM if a kernel really boots under it here, else TCG.
    qemu_accelerator: str = Field("auto", pattern="^(auto|kvm|tcg)$")
    qemu_vnc: bool = True
    qemu_console_bytes: int = Field(1 << 20, ge=4096)
    qemu_soft_reboot_timeout: float = Field(60.0, gt=0)
    # The test guest (a qcow2) that a fresh qemu cloud offers as its demo
    # image, and boots when a spawn is given no image (empty: built by
    # scripts/build-test-guest.sh into <data_dir>/guest/).
    qemu_fallback_image: str = ""
    # QEMU user-mode networking (restrict=on) for interfaces instead of taps.
    qemu_user_network: bool = False
    # PCIe root ports a guest starts with, for hot-plugged volumes and NICs
    # (Nova's num_pcie_ports); seconds a guest is given to release a device.
    qemu_pcie_ports: int = Field(8, ge=0, le=28)
    qemu_detach_timeout: float = Field(120.0, gt=0)
    # Each guest's QEMU in its own cgroup (memory and CPU limits from the
    # flavor) under qemu_cgroup_parent: auto where the host allows, on
    # (the driver refuses to start without), off.
    qemu_cgroups: str = Field("auto", pattern="^(auto|on|off)$")
    qemu_cgroup_parent: str = Field("loom.slice", min_length=1)
    # Memory QEMU may use beyond the guest's RAM (plus 1/64 of the RAM).
    qemu_cgroup_memory_overhead_mb: int = Field(256, ge=0)


class ConsoleSettings(_Section):
    """The console proxy (docs/consoles.md): serial consoles over a
    websocket and VNC through noVNC, on one listener."""

    # Run the proxy inside the API process (loom up, loom api); turn off
    # where `loom console-proxy` runs it instead.
    with_api: bool = True
    host: str = "127.0.0.1"
    # Nova's novncproxy port; 0 picks a free one (tests).
    port: int = Field(6080, ge=0, le=65535)
    # The URLs handed out; empty: derived from host and port
    # (http://HOST:PORT/vnc_lite.html and ws://HOST:PORT/).
    novnc_base_url: str = ""
    serial_base_url: str = ""
    # Seconds a console token stays valid (it is good for one connection).
    token_ttl: int = Field(600, gt=0)
    # Host names a browser's Origin may name besides the proxy's own.
    allowed_origins: list[str] = Field(default_factory=list)
    # Where scripts/novnc.sh put noVNC (empty: "novnc" in the data directory).
    novnc_dir: str = ""


class QuotaSettings(_Section):
    """Nova's default limits, for every project that has no limit of its own
    and no "default" quota class row; -1 means no limit."""

    instances: int = Field(10, ge=-1)
    cores: int = Field(20, ge=-1)
    ram: int = Field(51200, ge=-1)
    metadata_items: int = Field(128, ge=-1)
    injected_files: int = Field(5, ge=-1)
    injected_file_content_bytes: int = Field(10240, ge=-1)
    injected_file_path_length: int = Field(255, ge=-1)
    key_pairs: int = Field(100, ge=-1)
    server_groups: int = Field(10, ge=-1)
    server_group_members: int = Field(10, ge=-1)


class LogSettings(_Section):
    level: str = "INFO"
    debug: bool = False


class Settings(_Section):
    data_dir: Path = Path(".loom")
    database: DatabaseSettings = DatabaseSettings()
    bus: BusSettings = BusSettings()
    api: ApiSettings = ApiSettings()
    service: ServiceSettings = ServiceSettings()
    identity: IdentitySettings = IdentitySettings()
    image: ImageSettings = ImageSettings()
    service_user: ServiceUserSettings = ServiceUserSettings()
    compute: ComputeSettings = ComputeSettings()
    console: ConsoleSettings = ConsoleSettings()
    quota: QuotaSettings = QuotaSettings()
    log: LogSettings = LogSettings()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'loom.db'}"

    @property
    def public_url(self) -> str:
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        host = self.api.host if self.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.api.port}"

    @property
    def key_dir(self) -> Path:
        return Path(self.identity.key_dir) if self.identity.key_dir else self.data_dir / "fernet-keys"

    @property
    def image_dir(self) -> Path:
        return Path(self.image.store_dir) if self.image.store_dir else self.data_dir / "images"

    def replace(self, **changes: Any) -> Settings:
        """A copy with dotted keys (``"bus.url"``) or sections replaced."""
        data = self.model_dump()
        _merge(data, _expand_dotted(changes))
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise Invalid(f"invalid configuration: {_describe(exc)}") from None


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every source, in order of precedence."""
    data: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            with path.open("rb") as f:
                _merge(data, tomllib.load(f))
        except FileNotFoundError:
            raise Invalid(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise Invalid(f"configuration file {path} is not valid TOML: {exc}") from None
    _merge(data, _from_environ(os.environ if environ is None else environ))
    _merge(data, _expand_dotted({k: v for k, v in (overrides or {}).items() if v is not None}))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise Invalid(f"invalid configuration: {_describe(exc)}") from None


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        # Other tools share the prefix (test switches, scripts): only
        # variables naming a settings section or field are ours.
        if path[0] in Settings.model_fields:
            _merge(out, _nest(path, value))
    return out


def _expand_dotted(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        _merge(out, _nest(key.split("."), value))
    return out


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    node: Any = value
    for part in reversed(path):
        node = {part: node}
    return node


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = dict(value)
        else:
            into[key] = value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
