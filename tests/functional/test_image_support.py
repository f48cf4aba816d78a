"""What the image acceptance tests (test_image_*.py) share: disk images
made with ``qemu-img``, image API clients for fresh projects, and Glance's
error format. There are no tests here."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import Member, issue, new_member, password_auth, unique

PATCH = "application/openstack-images-v2.1-json-patch"
OCTET = {"Content-Type": "application/octet-stream"}


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def make_qcow2(path: Path, virtual_mib: int = 8, data_kib: int = 256) -> Path:
    """A qcow2 of ``virtual_mib`` whose first ``data_kib`` hold random bytes
    (so that its hashes say something about its content)."""
    raw = path.with_suffix(".src.raw")
    with raw.open("wb") as f:
        f.write(os.urandom(data_kib << 10))
        f.truncate(virtual_mib << 20)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(path))
    raw.unlink()
    return path


def virtual_size(path: Path) -> int:
    return int(json.loads(qemu_img("info", "--output", "json", str(path)))["virtual-size"])


def digests(data: bytes) -> tuple[str, str]:
    """md5 and sha512 of ``data``, as Glance's checksum and os_hash_value."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha512(data).hexdigest()


def image_client(cloud: Cloud, token: str) -> httpx.Client:
    return httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": token}, timeout=60)


def admin_images(cloud: Cloud) -> httpx.Client:
    return image_client(cloud, issue(cloud, password_auth("admin", cloud.admin_password, "admin")))


@dataclass
class Tenant:
    """A project with one user holding a role on it, and an image client
    carrying that user's project-scoped token."""

    member: Member
    http: httpx.Client

    @property
    def project_id(self) -> str:
        return self.member.project_id

    def env(self, cloud: Cloud) -> dict[str, str]:
        return cloud.env(self.member.name, self.member.password, self.member.project)


def new_tenant(cloud: Cloud, identity: httpx.Client, role: str = "member") -> Tenant:
    member = new_member(identity, role)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    return Tenant(member, image_client(cloud, token))


def create(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("img"), "disk_format": "raw", "container_format": "bare", **fields}
    r = http.post("/images", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload(http: httpx.Client, image_id: str, data: bytes, status: int = 204) -> httpx.Response:
    r = http.put(f"/images/{image_id}/file", content=data, headers=OCTET)
    assert r.status_code == status, r.text
    return r


def active(http: httpx.Client, data: bytes = b"", **fields: Any) -> dict[str, Any]:
    """A new image with ``data`` uploaded (raw unless told otherwise)."""
    image = create(http, **fields)
    upload(http, image["id"], data or os.urandom(4096))
    r = http.get(f"/images/{image['id']}")
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    return dict(r.json())


def patch(http: httpx.Client, image_id: str, *ops: dict[str, Any], content_type: str = PATCH) -> httpx.Response:
    return http.patch(f"/images/{image_id}", content=json.dumps(list(ops)), headers={"Content-Type": content_type})


def assert_error(r: httpx.Response, status: int, title: str, *, contains: str = "") -> dict[str, Any]:
    """Glance's error body: ``{"message", "code": "404 Not Found", "title"}``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"] == f"{status} {title}" and body["title"] == title, body
    assert isinstance(body["message"], str) and body["message"], body
    assert contains.lower() in body["message"].lower(), body
    return dict(body)


def stored_files(cloud: Cloud, image_id: str) -> list[str]:
    """What the store holds for an image, in ``data/`` and ``staging/``."""
    root = cloud.settings.image_dir
    return sorted(str(p.relative_to(root)) for d in ("data", "staging") for p in (root / d).glob(f"{image_id}*"))
