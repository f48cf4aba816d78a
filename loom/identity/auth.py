"""Authentication (password, token, application credential), scoping, and
token validation. Every failure to authenticate is the same 401, so a
caller cannot learn whether a user exists."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import AppCredential, Domain, Project, Role, User
from loom.errors import Forbidden, Invalid, NotFound, Unauthorized
from loom.identity import app_creds, assignments, projects, revocations, users
from loom.identity.passwords import verify_password
from loom.identity.reference import Reference
from loom.identity.tokens import TokenPayload, new_audit_id
from loom.timeutils import utcnow

AUTH_FAILED = "The request you have made requires authentication."
METHODS = ("password", "token", "application_credential")


def unauthorized(message: str = AUTH_FAILED) -> Unauthorized:
    return Unauthorized(message)


@dataclass
class TokenInfo:
    """A valid token and everything its response body shows."""

    payload: TokenPayload
    user: User
    user_domain: Domain
    roles: list[Role] = field(default_factory=list)
    project: Project | None = None
    project_domain: Domain | None = None
    domain: Domain | None = None
    app_cred: AppCredential | None = None

    @property
    def role_names(self) -> list[str]:
        return [r.name for r in self.roles]


@dataclass
class _Identity:
    user: User
    methods: list[str]
    audit_ids: tuple[str, ...]
    expires_at: dt.datetime | None = None
    app_cred: AppCredential | None = None
    # A token's own scope carries over when rescoping is not asked for.
    inherited_scope: dict[str, Any] | None = None


async def authenticate(
    session: AsyncSession, ref: Reference, auth: dict[str, Any], *, decode: Any, lifetime: int, rounds: int,
) -> TokenInfo:
    """Check the credentials in a ``POST /v3/auth/tokens`` body and return
    what the token to issue stands for. ``decode`` turns a token string
    into its payload (for the token method)."""
    identity = auth.get("identity")
    if not isinstance(identity, dict):
        raise Invalid("The request body must contain auth.identity.")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise Invalid("auth.identity.methods must be a non-empty list of method names.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise unauthorized(f"Attempted to authenticate with an unsupported method: {unknown[0]}.")
    if len(methods) != 1:
        raise unauthorized("Authenticate with exactly one method.")
    method = methods[0]
    data = identity.get(method)
    if not isinstance(data, dict):
        raise Invalid(f"auth.identity.{method} is missing.")
    if method == "password":
        who = await _password(session, ref, data, rounds)
    elif method == "token":
        who = await _token(session, ref, data, decode)
    else:
        who = await _app_cred(session, ref, data, rounds)
    _check_user(ref, who.user)
    now = utcnow()
    expires = now + dt.timedelta(seconds=lifetime)
    if who.expires_at is not None:
        expires = min(expires, who.expires_at)
    scope, project = await _scope(session, ref, who, auth.get("scope"))
    payload = TokenPayload(
        user_id=who.user.id, methods=tuple(who.methods), issued_at=now, expires_at=expires,
        audit_ids=who.audit_ids, app_cred_id=who.app_cred.id if who.app_cred else None, **scope,
    )
    # Refuse a scope the user holds no role on, before a token exists.
    return await validate(session, ref, payload, check_revoked=False, project=project)


async def _find_user(session: AsyncSession, ref: Reference, user: Any) -> User | None:
    if not isinstance(user, dict):
        raise Invalid("A user must be given as an object with id, or name and domain.")
    try:
        if user.get("id"):
            return await users.get(session, str(user["id"]))
        if user.get("name") and isinstance(user.get("domain"), dict):
            domain = ref.find_domain(user["domain"])
            return await users.get_by_name(session, str(user["name"]), domain.id)
    except NotFound:
        return None
    raise Invalid("A user must be given by id, or by name and domain.")


async def _password(session: AsyncSession, ref: Reference, data: dict[str, Any], rounds: int) -> _Identity:
    given = data.get("user")
    user = await _find_user(session, ref, given)
    password = given.get("password") if isinstance(given, dict) else None
    if not isinstance(password, str):
        raise Invalid("auth.identity.password.user.password is required.")
    # Verify even when the user is unknown so timing tells nothing.
    ok = await verify_password(password, user.password_hash if user else None, rounds=rounds)
    if user is None or not ok:
        raise unauthorized()
    return _Identity(user, ["password"], (new_audit_id(),))


async def _token(session: AsyncSession, ref: Reference, data: dict[str, Any], decode: Any) -> _Identity:
    token = data.get("id")
    if not isinstance(token, str):
        raise Invalid("auth.identity.token.id is required.")
    info = await validate(session, ref, decode(token))
    if info.app_cred is not None:
        raise Forbidden("A token from an application credential cannot be used to get another token.")
    scope: dict[str, Any] = {"project_id": info.payload.project_id, "domain_id": info.payload.domain_id,
                             "system": info.payload.system}
    methods = list(dict.fromkeys([*info.payload.methods, "token"]))
    return _Identity(info.user, methods, (new_audit_id(), info.payload.audit_ids[0]),
                     expires_at=info.payload.expires_at, inherited_scope=scope)


async def _app_cred(session: AsyncSession, ref: Reference, data: dict[str, Any], rounds: int) -> _Identity:
    secret = data.get("secret")
    if not isinstance(secret, str):
        raise Invalid("auth.identity.application_credential.secret is required.")
    cred: AppCredential | None = None
    if data.get("id"):
        cred = await app_creds.get_any(session, str(data["id"]))
    elif data.get("name"):
        user = await _find_user(session, ref, data.get("user"))
        cred = await app_creds.get_by_name(session, user.id, str(data["name"])) if user else None
    else:
        raise Invalid("An application credential must be given by id, or by name and user.")
    ok = await verify_password(secret, cred.secret_hash if cred else None, rounds=rounds)
    if cred is None or not ok:
        raise unauthorized()
    if cred.expires_at is not None and cred.expires_at <= utcnow():
        raise unauthorized()
    user = await users.get(session, cred.user_id)
    return _Identity(user, ["application_credential"], (new_audit_id(),),
                     expires_at=cred.expires_at, app_cred=cred)


def _check_user(ref: Reference, user: User) -> None:
    if not user.enabled or user.domain_id not in ref.domains or not ref.domains[user.domain_id].enabled:
        raise unauthorized()


async def _scope(session: AsyncSession, ref: Reference, who: _Identity, scope: Any
                 ) -> tuple[dict[str, Any], Project | None]:
    """The scope asked for, and the project when it is one (to save a query)."""
    if who.app_cred is not None:
        if scope not in (None, {}):
            raise unauthorized("Application credentials cannot request a scope.")
        return {"project_id": who.app_cred.project_id}, None
    if scope is None:
        if who.inherited_scope is not None:
            return who.inherited_scope, None
        return await _default_scope(session, ref, who.user), None
    if scope == "unscoped":
        return {}, None
    if not isinstance(scope, dict) or len(scope) != 1:
        raise Invalid("auth.scope must name exactly one of project, domain or system.")
    if "project" in scope:
        given = scope["project"] or {}
        try:
            if isinstance(given, dict) and given.get("id"):
                project = await projects.get(session, str(given["id"]))
            elif isinstance(given, dict) and given.get("name"):
                domain = ref.find_domain(given.get("domain"))
                project = await projects.get_by_name(session, str(given["name"]), domain.id)
            else:
                raise Invalid("A project scope needs an id, or a name and a domain.")
        except NotFound:
            raise unauthorized() from None
        return {"project_id": project.id}, project
    if "domain" in scope:
        try:
            domain = ref.find_domain(scope["domain"] or {})
        except NotFound:
            raise unauthorized() from None
        return {"domain_id": domain.id}, None
    if "system" in scope:
        if scope["system"] != {"all": True}:
            raise Invalid("The only system scope is {\"all\": true}.")
        return {"system": "all"}, None
    if "OS-TRUST:trust" in scope:
        raise Invalid("Trusts are not supported.")
    raise Invalid("auth.scope must name exactly one of project, domain or system.")


async def _default_scope(session: AsyncSession, ref: Reference, user: User) -> dict[str, Any]:
    """Scope to the user's default project when it is usable, as Keystone does."""
    if not user.default_project_id:
        return {}
    try:
        project = await projects.get(session, user.default_project_id)
    except NotFound:
        return {}
    if not project.enabled or not await _role_ids(session, ref, user.id, project=project):
        return {}
    return {"project_id": project.id}


async def _role_ids(session: AsyncSession, ref: Reference, user_id: str, **scope: Any) -> set[str]:
    return ref.expand(await assignments.direct_effective_role_ids(session, user_id, **scope))


async def validate(session: AsyncSession, ref: Reference, payload: TokenPayload, *,
                   check_revoked: bool = True, project: Project | None = None) -> TokenInfo:
    """Everything a valid token stands for, or Unauthorized."""
    if check_revoked and await revocations.is_revoked(session, payload):
        raise unauthorized("The token has been revoked.")
    try:
        user = await users.get(session, payload.user_id)
        user_domain = ref.domain(user.domain_id)
    except NotFound:
        raise unauthorized() from None
    if not user.enabled or not user_domain.enabled:
        raise unauthorized()
    info = TokenInfo(payload=payload, user=user, user_domain=user_domain)
    try:
        if payload.project_id:
            info.project = (project if project is not None and project.id == payload.project_id
                            else await projects.get(session, payload.project_id))
            info.project_domain = ref.domain(info.project.domain_id)
            if not info.project.enabled or not info.project_domain.enabled:
                raise unauthorized()
            role_ids = await _role_ids(session, ref, user.id, project=info.project)
        elif payload.domain_id:
            info.domain = ref.domain(payload.domain_id)
            if not info.domain.enabled:
                raise unauthorized()
            role_ids = await _role_ids(session, ref, user.id, domain_id=info.domain.id)
        elif payload.system:
            role_ids = await _role_ids(session, ref, user.id, system=True)
        else:
            return info
    except NotFound:
        raise unauthorized() from None
    if payload.app_cred_id:
        info.app_cred = await app_creds.get_any(session, payload.app_cred_id)
        if info.app_cred is None:
            raise unauthorized()
        role_ids &= ref.expand(info.app_cred.roles)
    if not role_ids:
        raise unauthorized("The user has no roles on the requested scope.")
    info.roles = ref.role_list(role_ids)
    return info


async def revoke(session: AsyncSession, payload: TokenPayload) -> None:
    await revocations.add(session, audit_id=payload.audit_ids[0])

