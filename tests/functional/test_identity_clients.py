"""The identity API through the client libraries, in-process:
keystoneauth1 sessions (password and application credential) and an
openstacksdk connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import openstack.connection
import pytest
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import admin_client, client, issue, new_member, password_auth, unique

# The SDK's own notices about its future releases, not about Loom.
pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning",
                                        "ignore::openstack.warnings.RemovedInSDK60Warning")

PUBLIC_IDENTITY = {"service_type": "identity", "interface": "public"}


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


def test_keystoneauth_password_session(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    auth = v3.Password(auth_url=cloud.auth_url, username=member.name, password=member.password,
                       user_domain_name="Default", project_name=member.project,
                       project_domain_name="Default")
    sess = ks_session.Session(auth=auth)
    token = sess.get_token()
    assert token
    assert sess.get_user_id() == member.user_id
    assert sess.get_project_id() == member.project_id
    access = auth.get_access(sess)
    assert set(access.role_names) == {"member", "reader"}
    assert access.project_name == member.project and access.user_domain_name == "Default"

    endpoint = sess.get_endpoint(**PUBLIC_IDENTITY)
    assert endpoint is not None and endpoint.startswith(cloud.url)
    assert endpoint.rstrip("/") in (cloud.url + "/identity", cloud.auth_url)

    r = sess.get(f"/v3/users/{member.user_id}", endpoint_filter=PUBLIC_IDENTITY)
    assert r.status_code == 200
    assert r.json()["user"]["name"] == member.name

    # The session's token is a real one: the API validates it.
    got = admin.get("/auth/tokens", headers={"X-Subject-Token": token})
    assert got.status_code == 200 and got.json()["token"]["user"]["id"] == member.user_id

    bad = ks_session.Session(auth=v3.Password(
        auth_url=cloud.auth_url, username=member.name, password="wrong", user_domain_name="Default",
        project_name=member.project, project_domain_name="Default"))
    with pytest.raises(ks_exceptions.Unauthorized):
        bad.get_token()


def test_keystoneauth_application_credential_session(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    with client(cloud, token) as http:
        r = http.post(f"/users/{member.user_id}/application_credentials", json={
            "application_credential": {"name": unique("cred"), "roles": [{"name": "reader"}]}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert [role["name"] for role in cred["roles"]] == ["reader"]

    auth = v3.ApplicationCredential(auth_url=cloud.auth_url, application_credential_id=cred["id"],
                                    application_credential_secret=cred["secret"])
    sess = ks_session.Session(auth=auth)
    assert sess.get_token()
    assert sess.get_user_id() == member.user_id
    assert sess.get_project_id() == member.project_id
    # Only the delegated role (reader), not the user's member role.
    assert auth.get_access(sess).role_names == ["reader"]
    endpoint = sess.get_endpoint(**PUBLIC_IDENTITY)
    assert endpoint is not None and endpoint.startswith(cloud.url)
    r = sess.get(f"/v3/users/{member.user_id}", endpoint_filter=PUBLIC_IDENTITY)
    assert r.status_code == 200 and r.json()["user"]["id"] == member.user_id

    # By name, with the user named by name and domain.
    by_name = ks_session.Session(auth=v3.ApplicationCredential(
        auth_url=cloud.auth_url, application_credential_name=cred["name"],
        application_credential_secret=cred["secret"], username=member.name, user_domain_name="Default"))
    assert by_name.get_project_id() == member.project_id

    wrong = ks_session.Session(auth=v3.ApplicationCredential(
        auth_url=cloud.auth_url, application_credential_id=cred["id"], application_credential_secret="nope"))
    with pytest.raises(ks_exceptions.Unauthorized):
        wrong.get_token()


def test_openstacksdk_connection(cloud: Cloud) -> None:
    conn = openstack.connection.Connection(
        auth_url=cloud.auth_url, username="admin", password=cloud.admin_password, project_name="admin",
        user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")
    try:
        project_name = unique("proj")
        project = conn.identity.create_project(name=project_name, domain_id="default",
                                               description="made by openstacksdk")
        assert project_name in {p.name for p in conn.identity.projects()}
        assert "admin" in {p.name for p in conn.identity.projects()}

        user_name, password = unique("user"), uuid.uuid4().hex
        user = conn.identity.create_user(name=user_name, password=password, domain_id="default",
                                         default_project_id=project.id, email="sdk@example.org")
        assert user.id and user.name == user_name
        found = conn.identity.find_user(user_name)
        assert found is not None and found.id == user.id
        assert conn.identity.get_user(user.id).email == "sdk@example.org"

        member = conn.identity.find_role("member")
        assert member is not None
        conn.identity.assign_project_role_to_user(project, user, member)
        assert conn.identity.validate_user_has_project_role(project, user, member)

        direct = list(conn.identity.role_assignments(user_id=user.id, scope_project_id=project.id))
        assert [(a.role["id"], a.scope["project"]["id"]) for a in direct] == [(member.id, project.id)]
        effective = list(conn.identity.role_assignments(user_id=user.id, scope_project_id=project.id,
                                                        effective=True, include_names=True))
        assert {a.role["name"] for a in effective} == {"member", "reader"}

        # The new user can log in with the sdk too.
        as_user = openstack.connection.Connection(
            auth_url=cloud.auth_url, username=user_name, password=password, project_name=project_name,
            user_domain_name="Default", project_domain_name="Default")
        assert as_user.current_user_id == user.id
        assert as_user.current_project_id == project.id
        as_user.close()

        conn.identity.unassign_project_role_from_user(project, user, member)
        assert list(conn.identity.role_assignments(user_id=user.id, scope_project_id=project.id)) == []
        conn.identity.delete_user(user)
        assert conn.identity.find_user(user_name) is None
        conn.identity.delete_project(project)
        assert conn.identity.find_project(project_name) is None
    finally:
        conn.close()
