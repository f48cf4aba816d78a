"""The image API on the wire, with httpx and a token: version discovery,
schemas, creating and patching images, data upload and download, listing
with filters, sorting and paging, deactivation, tags and members, and
Glance's error format."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import admin_client, unique
from tests.functional.test_image_support import (
    OCTET,
    PATCH,
    Tenant,
    active,
    admin_images,
    assert_error,
    create,
    digests,
    new_tenant,
    patch,
    upload,
)

# What a freshly created image shows (Glance's image schema, less the
# properties only an upload sets).
CREATED_FIELDS = {"id", "name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format",
                  "container_format", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
                  "min_disk", "min_ram", "tags", "created_at", "updated_at", "self", "file", "schema"}


@pytest.fixture(scope="module")
def identity(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_images(cloud) as c:
        yield c


@pytest.fixture
def tenant(cloud: Cloud, identity: httpx.Client) -> Iterator[Tenant]:
    t = new_tenant(cloud, identity)
    yield t
    t.http.close()


@pytest.fixture
def other(cloud: Cloud, identity: httpx.Client) -> Iterator[Tenant]:
    t = new_tenant(cloud, identity)
    yield t
    t.http.close()


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["images"]]


def test_version_document(cloud: Cloud) -> None:
    for path in ("/image", "/image/"):
        # (``/image`` redirects to ``/image/``, which clients follow.)
        r = httpx.get(cloud.url + path, timeout=30, follow_redirects=True)
        assert r.status_code == 300, (path, r.text)
        versions = r.json()["versions"]
        assert versions[0]["status"] == "CURRENT"
        assert all(v["status"] in ("CURRENT", "SUPPORTED") for v in versions[1:])
        assert [v["id"] for v in versions if v["status"] == "CURRENT"] == [versions[0]["id"]]
        assert {"v2.0", "v2.1"} <= {v["id"] for v in versions}
        for v in versions:
            (link,) = v["links"]
            assert link["rel"] == "self" and link["href"] == cloud.url + "/image/v2/"
    r = httpx.get(cloud.url + "/image/versions", timeout=30)
    assert r.status_code == 200 and r.json()["versions"][0]["status"] == "CURRENT"


def test_schemas(tenant: Tenant) -> None:
    r = tenant.http.get("/schemas/image")
    assert r.status_code == 200, r.text
    schema = r.json()
    assert schema["name"] == "image"
    assert CREATED_FIELDS - {"self", "file", "schema"} <= set(schema["properties"]) | {"owner"}
    assert schema["properties"]["status"]["readOnly"] is True
    assert "qcow2" in schema["properties"]["disk_format"]["enum"]
    assert schema["properties"]["visibility"]["enum"] == ["public", "private", "shared", "community"]
    assert schema["additionalProperties"] == {"type": "string"}
    images = tenant.http.get("/schemas/images").json()
    assert images["name"] == "images" and images["properties"]["images"]["items"]["name"] == "image"
    assert tenant.http.get("/schemas/member").json()["name"] == "member"
    assert_error(tenant.http.get("/schemas/nope"), 404, "Not Found")


def test_create_shows_documented_fields(cloud: Cloud, tenant: Tenant) -> None:
    name = unique("img")
    r = tenant.http.post("/images", json={"name": name, "disk_format": "qcow2", "container_format": "bare",
                                          "min_ram": 512, "tags": ["a", "b", "a"], "distro": "debian"})
    assert r.status_code == 201, r.text
    image = r.json()
    assert CREATED_FIELDS <= set(image)
    assert image["status"] == "queued" and image["name"] == name
    assert image["owner"] == tenant.project_id and image["visibility"] == "shared"
    assert image["size"] is None and image["virtual_size"] is None and image["checksum"] is None
    assert image["os_hash_algo"] is None and image["os_hash_value"] is None
    assert image["protected"] is False and image["os_hidden"] is False
    assert (image["min_disk"], image["min_ram"]) == (0, 512)
    assert image["tags"] == ["a", "b"] and image["distro"] == "debian"
    assert image["self"] == f"/v2/images/{image['id']}" and image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert r.headers["Location"] == f"{cloud.url}/image/v2/images/{image['id']}"
    assert tenant.http.get(f"/images/{image['id']}").json() == image

    # A chosen id is kept; choosing it again conflicts.
    chosen = str(uuid.uuid4())
    assert create(tenant.http, id=chosen)["id"] == chosen
    assert_error(tenant.http.post("/images", json={"id": chosen}), 409, "Conflict")
    assert_error(tenant.http.post("/images", json={"id": "not-a-uuid"}), 400, "Bad Request")
    assert_error(tenant.http.post("/images", json={"disk_format": "floppy"}), 400, "Bad Request")
    assert_error(tenant.http.post("/images", json={"status": "active"}), 403, "Forbidden")
    assert_error(tenant.http.post("/images", json={"size": 1}), 403, "Forbidden")


def test_patch_properties_and_name(tenant: Tenant) -> None:
    image = create(tenant.http)
    iid = image["id"]
    r = patch(tenant.http, iid, {"op": "add", "path": "/color", "value": "red"},
              {"op": "replace", "path": "/name", "value": "renamed"},
              {"op": "add", "path": "/min_disk", "value": 3})
    assert r.status_code == 200, r.text
    assert (r.json()["color"], r.json()["name"], r.json()["min_disk"]) == ("red", "renamed", 3)
    r = patch(tenant.http, iid, {"op": "replace", "path": "/color", "value": "blue"},
              {"op": "add", "path": "/shape", "value": "round"})
    assert (r.json()["color"], r.json()["shape"]) == ("blue", "round")
    r = patch(tenant.http, iid, {"op": "remove", "path": "/color"})
    assert r.status_code == 200 and "color" not in r.json() and r.json()["shape"] == "round"
    shown = tenant.http.get(f"/images/{iid}").json()
    assert "color" not in shown and shown["shape"] == "round" and shown["name"] == "renamed"
    # The older patch media type is accepted too.
    r = patch(tenant.http, iid, {"op": "add", "path": "/color", "value": "green"},
              content_type="application/openstack-images-v2.0-json-patch")
    assert r.status_code == 200 and r.json()["color"] == "green"

    # Errors: wrong media type, read-only and reserved attributes, missing properties.
    for content_type in ("application/json", "application/json-patch+json"):
        r = patch(tenant.http, iid, {"op": "add", "path": "/x", "value": "y"}, content_type=content_type)
        assert_error(r, 415, "Unsupported Media Type")
    for path, value in (("/size", 1), ("/status", "active"), ("/checksum", "0"), ("/id", str(uuid.uuid4()))):
        assert_error(patch(tenant.http, iid, {"op": "replace", "path": path, "value": value}), 403, "Forbidden",
                     contains="read-only")
    assert_error(patch(tenant.http, iid, {"op": "remove", "path": "/nothere"}), 409, "Conflict")
    assert_error(patch(tenant.http, iid, {"op": "replace", "path": "/nothere", "value": "x"}), 409, "Conflict")
    assert_error(patch(tenant.http, iid, {"op": "remove", "path": "/name"}), 403, "Forbidden")
    assert_error(patch(tenant.http, iid, {"op": "add", "path": "/os_glance_x", "value": "x"}), 403, "Forbidden")
    assert_error(patch(tenant.http, iid, {"op": "add", "path": "/prop", "value": 1}), 400, "Bad Request")
    assert_error(patch(tenant.http, iid, {"op": "move", "path": "/name"}), 400, "Bad Request")
    assert_error(patch(tenant.http, iid, {"op": "add", "path": "/min_ram", "value": -1}), 400, "Bad Request")
    # A failed patch changed nothing, not even its valid operations.
    r = patch(tenant.http, iid, {"op": "replace", "path": "/name", "value": "lost"},
              {"op": "replace", "path": "/size", "value": 1})
    assert r.status_code == 403
    assert tenant.http.get(f"/images/{iid}").json()["name"] == "renamed"


def test_upload_download_lifecycle(tenant: Tenant) -> None:
    image = create(tenant.http)
    iid = image["id"]
    r = tenant.http.get(f"/images/{iid}/file")
    assert r.status_code == 204 and r.content == b""

    r = tenant.http.put(f"/images/{iid}/file", content=b"x" * 10, headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "Unsupported Media Type")
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "queued"

    data = os.urandom(300_000)
    upload(tenant.http, iid, data)
    shown = tenant.http.get(f"/images/{iid}").json()
    md5, sha512 = digests(data)
    assert shown["status"] == "active" and shown["size"] == len(data) == shown["virtual_size"]
    assert (shown["checksum"], shown["os_hash_algo"], shown["os_hash_value"]) == (md5, "sha512", sha512)
    # The image data can be uploaded only once.
    assert_error(tenant.http.put(f"/images/{iid}/file", content=b"again", headers=OCTET), 409, "Conflict")
    r = tenant.http.get(f"/images/{iid}/file")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-md5"] == md5 and int(r.headers["content-length"]) == len(data)
    # Formats cannot change once the image has data.
    assert_error(patch(tenant.http, iid, {"op": "replace", "path": "/disk_format", "value": "iso"}), 403,
                 "Forbidden")

    # Upload needs the formats set first.
    bare = tenant.http.post("/images", json={"name": unique("img")}).json()
    assert_error(tenant.http.put(f"/images/{bare['id']}/file", content=b"x", headers=OCTET), 400, "Bad Request")
    assert tenant.http.get(f"/images/{bare['id']}").json()["status"] == "queued"

    assert tenant.http.delete(f"/images/{iid}").status_code == 204
    assert_error(tenant.http.get(f"/images/{iid}"), 404, "Not Found", contains=iid)
    assert_error(tenant.http.get(f"/images/{iid}/file"), 404, "Not Found")
    assert_error(tenant.http.delete(f"/images/{iid}"), 404, "Not Found")


def test_paging_follows_next_until_exhausted(tenant: Tenant) -> None:
    made = {create(tenant.http, name=f"page-{i:02d}")["id"] for i in range(7)}
    seen: list[str] = []
    url: str | None = "/images?limit=3&sort_key=name&sort_dir=asc"
    pages = 0
    while url:
        r = tenant.http.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["first"] == "/v2/images" and body["schema"] == "/v2/schemas/images"
        assert len(body["images"]) <= 3
        seen += [i["id"] for i in body["images"]]
        pages += 1
        url = body["next"].removeprefix("/v2") if "next" in body else None
        assert pages <= 4
    assert pages == 3 and len(seen) == len(set(seen)) == 7 and set(seen) == made
    names = [tenant.http.get(f"/images/{i}").json()["name"] for i in seen]
    assert names == sorted(names)
    # A marker that is not an image the caller can list.
    assert_error(tenant.http.get("/images", params={"marker": str(uuid.uuid4())}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"limit": "x"}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"limit": "-1"}), 400, "Bad Request")


def test_next_link_keeps_filters_with_special_characters(tenant: Tenant) -> None:
    """The next link is a URL: its filter values are encoded, so following
    it keeps the filter."""
    for _ in range(3):
        create(tenant.http, note="a&b c")
    create(tenant.http, note="a")
    r = tenant.http.get("/images", params={"note": "a&b c", "limit": 2})
    assert len(ids(r)) == 2 and "next" in r.json()
    r = tenant.http.get(r.json()["next"].removeprefix("/v2"))
    assert r.status_code == 200, r.text
    assert [i["note"] for i in r.json()["images"]] == ["a&b c"]


def test_sort_key_and_dir(tenant: Tenant) -> None:
    a = active(tenant.http, os.urandom(3000), name="s-b")
    b = active(tenant.http, os.urandom(1000), name="s-a")
    c = active(tenant.http, os.urandom(2000), name="s-c")
    mine = {a["id"], b["id"], c["id"]}

    def order(**params: Any) -> list[str]:
        return [i for i in ids(tenant.http.get("/images", params=params)) if i in mine]

    assert order(sort_key="name", sort_dir="asc") == [b["id"], a["id"], c["id"]]
    assert order(sort_key="name", sort_dir="desc") == [c["id"], a["id"], b["id"]]
    assert order(sort_key="size", sort_dir="asc") == [b["id"], c["id"], a["id"]]
    assert order(sort="size:desc") == [a["id"], c["id"], b["id"]]
    assert order(sort="name:asc") == [b["id"], a["id"], c["id"]]
    # Newest first by default.
    assert order() == [c["id"], b["id"], a["id"]]
    assert_error(tenant.http.get("/images", params={"sort_key": "bogus"}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"sort_key": "name", "sort_dir": "up"}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"sort": "name:asc", "sort_key": "name"}), 400, "Bad Request")


def test_filters(tenant: Tenant) -> None:
    small = active(tenant.http, os.urandom(1000), tags=["web", "prod"])
    big = active(tenant.http, os.urandom(5000), tags=["web"], container_format="ova")
    iso = create(tenant.http, disk_format="iso", visibility="private")
    mine = {small["id"], big["id"], iso["id"]}

    def found(**params: Any) -> set[str]:
        r = tenant.http.get("/images", params=params)
        return set(ids(r)) & mine

    assert found() == mine
    assert found(size_min=2000) == {big["id"]}
    assert found(size_max=2000) == {small["id"]}
    assert found(size_min=1000, size_max=5000) == {small["id"], big["id"]}
    assert found(disk_format="iso") == {iso["id"]}
    assert found(disk_format="raw") == {small["id"], big["id"]}
    assert found(container_format="ova") == {big["id"]}
    assert found(status="queued") == {iso["id"]}
    assert found(visibility="private") == {iso["id"]}
    assert found(visibility="shared") == {small["id"], big["id"]}
    assert found(tag="web") == {small["id"], big["id"]}
    assert set(ids(tenant.http.get("/images", params=[("tag", "web"), ("tag", "prod")]))) == {small["id"]}
    assert found(name=iso["name"]) == {iso["id"]}
    assert found(id=f"in:{small['id']},{iso['id']}") == {small["id"], iso["id"]}
    assert_error(tenant.http.get("/images", params={"size_min": "big"}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"visibility": "everyone"}), 400, "Bad Request")
    assert_error(tenant.http.get("/images", params={"member_status": "maybe"}), 400, "Bad Request")


def test_member_status_filter_and_shared_listing(tenant: Tenant, other: Tenant) -> None:
    pending = active(tenant.http)
    accepted = active(tenant.http)
    rejected = active(tenant.http)
    for image in (pending, accepted, rejected):
        r = tenant.http.post(f"/images/{image['id']}/members", json={"member": other.project_id})
        assert r.status_code == 200, r.text
    for image, status in ((accepted, "accepted"), (rejected, "rejected")):
        r = other.http.put(f"/images/{image['id']}/members/{other.project_id}", json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    shared = {pending["id"], accepted["id"], rejected["id"]}

    def found(**params: Any) -> set[str]:
        return set(ids(other.http.get("/images", params=params))) & shared

    assert found() == {accepted["id"]}
    assert found(visibility="shared") == {accepted["id"]}
    assert found(member_status="pending") == {pending["id"]}
    assert found(member_status="rejected") == {rejected["id"]}
    assert found(member_status="all") == shared
    assert found(visibility="shared", member_status="all") == shared
    # Whatever its member status, an image shared with the caller can be read by id.
    for image in (pending, rejected):
        assert other.http.get(f"/images/{image['id']}").status_code == 200
        assert other.http.get(f"/images/{image['id']}/file").status_code == 200


def test_community_visibility(tenant: Tenant, other: Tenant) -> None:
    community = active(tenant.http, visibility="community")
    private = active(tenant.http, visibility="private")
    assert community["visibility"] == "community"
    # Other projects do not list community images unless they ask for them...
    assert community["id"] not in ids(other.http.get("/images"))
    assert community["id"] in ids(other.http.get("/images", params={"visibility": "community"}))
    # ... but can read them by id, and their data.
    assert other.http.get(f"/images/{community['id']}").status_code == 200
    assert other.http.get(f"/images/{community['id']}/file").status_code == 200
    # The owner lists its own community image by default.
    assert community["id"] in ids(tenant.http.get("/images"))
    assert private["id"] not in ids(other.http.get("/images", params={"visibility": "community"}))
    assert_error(other.http.get(f"/images/{private['id']}"), 404, "Not Found")
    # Only the owner may change it; a community image has no members.
    assert_error(patch(other.http, community["id"], {"op": "add", "path": "/x", "value": "y"}), 403, "Forbidden")
    r = tenant.http.post(f"/images/{community['id']}/members", json={"member": other.project_id})
    assert_error(r, 403, "Forbidden")


def test_deactivate_and_reactivate(tenant: Tenant, admin: httpx.Client) -> None:
    image = active(tenant.http, b"secret data")
    iid = image["id"]
    assert_error(tenant.http.post(f"/images/{iid}/actions/deactivate"), 403, "Forbidden")
    assert admin.post(f"/images/{iid}/actions/deactivate").status_code == 204
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "deactivated"
    # Deactivating twice is fine.
    assert admin.post(f"/images/{iid}/actions/deactivate").status_code == 204
    assert_error(tenant.http.get(f"/images/{iid}/file"), 403, "Forbidden", contains="deactivated")
    r = admin.get(f"/images/{iid}/file")
    assert r.status_code == 200 and r.content == b"secret data"
    assert_error(tenant.http.post(f"/images/{iid}/actions/reactivate"), 403, "Forbidden")
    assert admin.post(f"/images/{iid}/actions/reactivate").status_code == 204
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "active"
    assert tenant.http.get(f"/images/{iid}/file").content == b"secret data"
    # A queued image cannot be deactivated; an unknown one is not found.
    queued = create(tenant.http)
    assert_error(admin.post(f"/images/{queued['id']}/actions/deactivate"), 409, "Conflict")
    assert_error(admin.post(f"/images/{queued['id']}/actions/reactivate"), 409, "Conflict")
    assert_error(admin.post(f"/images/{uuid.uuid4()}/actions/deactivate"), 404, "Not Found")


def test_tags(tenant: Tenant, other: Tenant) -> None:
    iid = create(tenant.http)["id"]
    assert tenant.http.put(f"/images/{iid}/tags/one").status_code == 204
    assert tenant.http.put(f"/images/{iid}/tags/two").status_code == 204
    assert tenant.http.put(f"/images/{iid}/tags/one").status_code == 204  # idempotent
    assert tenant.http.get(f"/images/{iid}").json()["tags"] == ["one", "two"]
    assert iid in ids(tenant.http.get("/images", params={"tag": "two"}))
    assert tenant.http.delete(f"/images/{iid}/tags/one").status_code == 204
    assert tenant.http.get(f"/images/{iid}").json()["tags"] == ["two"]
    assert_error(tenant.http.delete(f"/images/{iid}/tags/one"), 404, "Not Found")
    assert_error(other.http.put(f"/images/{iid}/tags/x"), 404, "Not Found")
    assert_error(tenant.http.put(f"/images/{uuid.uuid4()}/tags/x"), 404, "Not Found")


def test_members_flow(tenant: Tenant, other: Tenant, cloud: Cloud, identity: httpx.Client) -> None:
    image = active(tenant.http, b"shared bytes")
    iid = image["id"]
    assert_error(other.http.get(f"/images/{iid}"), 404, "Not Found")

    r = tenant.http.post(f"/images/{iid}/members", json={"member": other.project_id})
    assert r.status_code == 200, r.text
    member = r.json()
    assert member["image_id"] == iid and member["member_id"] == other.project_id
    assert member["status"] == "pending" and member["schema"] == "/v2/schemas/member"
    assert {"created_at", "updated_at"} <= set(member)
    assert_error(tenant.http.post(f"/images/{iid}/members", json={"member": other.project_id}), 409, "Conflict")
    assert_error(tenant.http.post(f"/images/{iid}/members", json={}), 400, "Bad Request")

    r = tenant.http.get(f"/images/{iid}/members")
    assert r.status_code == 200 and [m["member_id"] for m in r.json()["members"]] == [other.project_id]
    assert r.json()["schema"] == "/v2/schemas/members"
    r = tenant.http.get(f"/images/{iid}/members/{other.project_id}")
    assert r.status_code == 200 and r.json()["status"] == "pending"

    # The member sees the image by id, not in its default listing.
    assert other.http.get(f"/images/{iid}").status_code == 200
    assert iid not in ids(other.http.get("/images"))
    assert [m["member_id"] for m in other.http.get(f"/images/{iid}/members").json()["members"]] == [
        other.project_id]
    # Only the member accepts or rejects; only the owner adds or removes members.
    assert_error(tenant.http.put(f"/images/{iid}/members/{other.project_id}", json={"status": "accepted"}), 403,
                 "Forbidden")
    assert_error(other.http.post(f"/images/{iid}/members", json={"member": uuid.uuid4().hex}), 403,
                 "Forbidden")
    assert_error(other.http.delete(f"/images/{iid}/members/{other.project_id}"), 403, "Forbidden")
    assert_error(other.http.put(f"/images/{iid}/members/{other.project_id}", json={"status": "maybe"}), 400,
                 "Bad Request")

    r = other.http.put(f"/images/{iid}/members/{other.project_id}", json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert iid in ids(other.http.get("/images"))
    assert other.http.get(f"/images/{iid}/file").content == b"shared bytes"
    # A member may not change the image.
    assert_error(patch(other.http, iid, {"op": "add", "path": "/x", "value": "y"}), 403, "Forbidden")
    assert_error(other.http.delete(f"/images/{iid}"), 403, "Forbidden")

    # A third project sees neither the image nor its members.
    third = new_tenant(cloud, identity)
    with third.http:
        assert_error(third.http.get(f"/images/{iid}/members"), 404, "Not Found")
        assert_error(third.http.get(f"/images/{iid}/members/{other.project_id}"), 404, "Not Found")

    assert tenant.http.delete(f"/images/{iid}/members/{other.project_id}").status_code == 204
    assert_error(tenant.http.get(f"/images/{iid}/members/{other.project_id}"), 404, "Not Found")
    assert_error(tenant.http.delete(f"/images/{iid}/members/{other.project_id}"), 404, "Not Found")
    assert_error(other.http.get(f"/images/{iid}"), 404, "Not Found")
    assert iid not in ids(other.http.get("/images", params={"member_status": "all"}))

    # A private image has no members.
    private = create(tenant.http, visibility="private")
    assert_error(tenant.http.post(f"/images/{private['id']}/members", json={"member": other.project_id}), 403,
                 "Forbidden")


def test_error_format(cloud: Cloud, tenant: Tenant) -> None:
    missing = str(uuid.uuid4())
    body = assert_error(tenant.http.get(f"/images/{missing}"), 404, "Not Found")
    assert body["code"] == "404 Not Found" and missing in body["message"]
    assert_error(tenant.http.post("/images", content=b"{not json", headers={"Content-Type": "application/json"}),
                 400, "Bad Request")
    assert_error(tenant.http.post("/images", json=["a list"]), 400, "Bad Request")
    # Without a token.
    r = httpx.get(cloud.url + "/image/v2/images", timeout=30)
    assert r.status_code == 401
    assert_error(r, 401, "Unauthorized")
    r = httpx.get(cloud.url + "/image/v2/images", headers={"X-Auth-Token": "bogus"}, timeout=30)
    assert_error(r, 401, "Unauthorized")
    assert_error(tenant.http.get("/nowhere"), 404, "Not Found")
    assert tenant.http.patch("/images/x", content=b"[]", headers={"Content-Type": PATCH}).status_code == 404


def test_visibility_all_includes_community_images(tenant: Tenant, other: Tenant) -> None:
    community = active(tenant.http, visibility="community")
    shared = active(tenant.http)
    mine = active(other.http)
    found = set(ids(other.http.get("/images", params={"visibility": "all"})))
    assert mine["id"] in found and shared["id"] not in found
    assert community["id"] in found


def test_admin_lists_every_shared_image_with_visibility_shared(tenant: Tenant, admin: httpx.Client) -> None:
    shared = active(tenant.http)
    private = active(tenant.http, visibility="private")
    assert private["id"] in ids(admin.get("/images", params={"visibility": "private"}))
    assert shared["id"] in ids(admin.get("/images"))
    assert shared["id"] in ids(admin.get("/images", params={"visibility": "shared"}))
