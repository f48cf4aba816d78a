"""The image API through the stock ``openstack`` CLI, as a user drives it:
create from a qcow2 file, show, list with filters and paging, set and
unset, save, share with another project, deactivate, delete.

Setting up (fresh projects, extra images) goes over plain HTTP, which is
much quicker than a CLI call; what is under test goes through the CLI.
Independent CLI calls run side by side, each being its own process."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import admin_client, unique
from tests.functional.test_image_support import (
    Tenant,
    active,
    admin_images,
    create,
    make_qcow2,
    new_tenant,
    stored_files,
    virtual_size,
)


@pytest.fixture(scope="module")
def identity(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


@pytest.fixture(scope="module")
def tenant(cloud: Cloud, identity: httpx.Client) -> Iterator[Tenant]:
    t = new_tenant(cloud, identity)
    yield t
    t.http.close()


def parallel(cloud: Cloud, *commands: tuple[dict[str, str], tuple[str, ...]]) -> list[Any]:
    """Run several CLI commands at once: (environment, arguments) each."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda c: cloud.openstack(*c[1], env=c[0]), commands))


def fails(cloud: Cloud, *args: str, env: dict[str, str], expect: str) -> str:
    """Run a CLI command that must fail, saying ``expect``."""
    proc = cloud.openstack(*args, env=env, check=False)
    assert proc.returncode != 0, proc.stdout
    assert expect in proc.stderr, proc.stderr
    return str(proc.stderr)


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["Name"] for r in rows]


def test_create_show_save_delete(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    source = make_qcow2(tmp_path / "disk.qcow2", virtual_mib=24, data_kib=512)
    data = source.read_bytes()
    env = tenant.env(cloud)
    name = unique("cli")
    image = cloud.openstack("image", "create", "--file", str(source), "--disk-format", "qcow2",
                            "--container-format", "bare", name, env=env)
    assert image["name"] == name and image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert image["virtual_size"] == virtual_size(source) == 24 << 20
    assert image["disk_format"] == "qcow2" and image["container_format"] == "bare"
    assert image["owner"] == tenant.project_id
    # The CLI puts whatever it does not know among "properties".
    hashes = {**image, **image.get("properties", {})}
    assert hashes["os_hash_algo"] == "sha512"
    assert hashes["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert stored_files(cloud, image["id"]) == [f"data/{image['id']}"]

    out = tmp_path / "saved.qcow2"
    shown, _ = parallel(cloud, (env, ("image", "show", image["id"])),
                        (env, ("image", "save", "--file", str(out), image["id"])))
    assert shown["id"] == image["id"] and shown["checksum"] == image["checksum"]
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert out.read_bytes() == data

    cloud.openstack("image", "delete", image["id"], env=env)
    assert stored_files(cloud, image["id"]) == []
    fails(cloud, "image", "show", image["id"], env=env, expect=f"No Image found for {image['id']}")


def test_list_filters_sorting_and_paging(cloud: Cloud, identity: httpx.Client) -> None:
    t = new_tenant(cloud, identity)
    env = t.env(cloud)
    prefix = unique("ls")
    with t.http:
        a = active(t.http, name=f"{prefix}-a", visibility="private", tags=["gold"])
        b = create(t.http, name=f"{prefix}-b", flavor="big")
        c = active(t.http, name=f"{prefix}-c", flavor="big", tags=["gold", "silver"])
        d = active(t.http, name=f"{prefix}-d", visibility="community")
    with admin_images(cloud) as admin:
        p = active(admin, name=f"{prefix}-p", visibility="public")
    mine = {a["id"]: "a", b["id"]: "b", c["id"]: "c", d["id"]: "d", p["id"]: "p"}

    def letters(rows: list[dict[str, Any]]) -> list[str]:
        return [mine[r["ID"]] for r in rows if r["ID"] in mine]

    results = parallel(
        cloud,
        (env, ("image", "list")),
        (env, ("image", "list", "--name", f"{prefix}-c")),
        (env, ("image", "list", "--status", "queued")),
        (env, ("image", "list", "--private")),
        (env, ("image", "list", "--public")),
        (env, ("image", "list", "--shared")),
        (env, ("image", "list", "--community")),
        (env, ("image", "list", "--property", "flavor=big")),
        (env, ("image", "list", "--tag", "gold")),
        (env, ("image", "list", "--long", "--sort", "name:asc")),
        (env, ("image", "list", "--sort", "name:desc")),
    )
    (default, by_name, queued, private, public, shared, community, by_property, by_tag, long, desc) = results
    assert sorted(letters(default)) == ["a", "b", "c", "d", "p"]
    assert letters(by_name) == ["c"] and by_name[0]["Status"] == "active"
    assert letters(queued) == ["b"]
    assert letters(private) == ["a"]
    assert letters(public) == ["p"]
    assert sorted(letters(shared)) == ["b", "c"]
    assert letters(community) == ["d"]
    assert sorted(letters(by_property)) == ["b", "c"]
    assert sorted(letters(by_tag)) == ["a", "c"]
    assert letters(long) == ["a", "b", "c", "d", "p"]
    assert letters(desc) == ["p", "d", "c", "b", "a"]
    row = next(r for r in long if r["ID"] == c["id"])
    assert row["Disk Format"] == "raw" and row["Container Format"] == "bare" and row["Size"] == c["size"]
    assert row["Checksum"] == c["checksum"] and row["Visibility"] == "shared"
    assert row["Project"] == t.project_id and sorted(row["Tags"]) == ["gold", "silver"]

    # --limit and --marker page through the list; the API pages newest
    # first (the CLI sorts each page by name itself, after the fact).
    # The markers are known beforehand, so the pages are fetched together.
    page1, page2, page3 = parallel(cloud, (env, ("image", "list", "--limit", "2")),
                                   (env, ("image", "list", "--limit", "2", "--marker", d["id"])),
                                   (env, ("image", "list", "--limit", "2", "--marker", b["id"])))
    assert letters(page1) == ["d", "p"] and len(page1) == 2
    assert letters(page2) == ["b", "c"] and len(page2) == 2
    # The cloud's own public demo image may follow on the last page.
    assert letters(page3) == ["a"]


def test_set_unset_and_protected(cloud: Cloud, tenant: Tenant) -> None:
    image = active(tenant.http, name=unique("set"))
    env = tenant.env(cloud)
    new_name = unique("renamed")
    cloud.openstack("image", "set", "--property", "os_distro=debian", "--property", "color=red", "--name", new_name,
                    "--min-disk", "5", "--protected", "--tag", "t1", "--tag", "t2", image["id"], env=env)
    shown = tenant.http.get(f"/images/{image['id']}").json()
    assert shown["name"] == new_name and shown["min_disk"] == 5 and shown["protected"] is True
    assert shown["os_distro"] == "debian" and shown["color"] == "red"
    assert sorted(shown["tags"]) == ["t1", "t2"]

    err = fails(cloud, "image", "delete", image["id"], env=env, expect="403")
    assert "protected" in err
    assert tenant.http.get(f"/images/{image['id']}").status_code == 200

    cloud.openstack("image", "unset", "--property", "color", "--tag", "t1", image["id"], env=env)
    cloud.openstack("image", "set", "--unprotected", image["id"], env=env)
    shown = cloud.openstack("image", "show", image["id"], env=env)
    props = shown.get("properties", {})
    assert "color" not in props and "color" not in shown
    assert props.get("os_distro", shown.get("os_distro")) == "debian"
    assert shown["tags"] == ["t2"] and shown["protected"] is False
    cloud.openstack("image", "delete", image["id"], env=env)
    assert tenant.http.get(f"/images/{image['id']}").status_code == 404


def test_share_accept_and_remove(cloud: Cloud, tenant: Tenant, identity: httpx.Client) -> None:
    image = active(tenant.http, name=unique("share"))
    iid = image["id"]
    other = new_tenant(cloud, identity)
    owner_env, other_env = tenant.env(cloud), other.env(cloud)
    with other.http:
        member = cloud.openstack("image", "add", "project", iid, other.project_id, "-f", "json", env=owner_env)
        assert member["image_id"] == iid and member["member_id"] == other.project_id
        assert member["status"] == "pending"

        listed, shown = parallel(cloud, (other_env, ("image", "list")), (other_env, ("image", "show", iid)))
        assert iid not in [r["ID"] for r in listed]
        assert shown["id"] == iid and shown["status"] == "active"

        cloud.openstack("image", "set", "--accept", iid, env=other_env)
        assert iid in [r["ID"] for r in cloud.openstack("image", "list", env=other_env)]
        assert other.http.get(f"/images/{iid}/members/{other.project_id}").json()["status"] == "accepted"

        cloud.openstack("image", "remove", "project", iid, other.project_id, env=owner_env)
        assert other.http.get(f"/images/{iid}").status_code == 404
        fails(cloud, "image", "show", iid, env=other_env, expect=f"No Image found for {iid}")


def test_deactivate_activate(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    data = os.urandom(8192)
    image = active(tenant.http, data, name=unique("deact"))
    iid = image["id"]
    env = tenant.env(cloud)
    cloud.openstack("image", "set", "--deactivate", iid)  # as the cloud's admin
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "deactivated"
    out = tmp_path / "out.raw"
    # The download is refused with 403; the SDK under the CLI does not look
    # at the status of a download and reports the error body's checksum.
    assert tenant.http.get(f"/images/{iid}/file").status_code == 403
    fails(cloud, "image", "save", "--file", str(out), iid, env=env, expect="checksum mismatch")
    # The SDK ignores the answer to an image action too: the member's
    # --activate "succeeds" but the API refused it and nothing changed.
    cloud.openstack("image", "set", "--activate", iid, env=env)
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "deactivated"
    cloud.openstack("image", "set", "--activate", iid)
    cloud.openstack("image", "save", "--file", str(out), iid, env=env)
    assert out.read_bytes() == data
