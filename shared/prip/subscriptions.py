"""Subscriptions (ESA PRIP/AUXIP push subscriptions): the JSON bodies, checked at the edge
with pydantic, and the operations behind `/odata/v1/Subscriptions`.

A subscriber sees and changes only its own subscriptions; another owner's Id answers 404
exactly like an unknown one (existence is not revealed). Operators see and change all.
Status: running <-> paused; cancelled is final (a cancelled subscription stays listed
until deleted, and cannot be resumed: 409). NotificationEpUsername/NotificationEpPassword
are write-only: stored for notify's Basic auth, never returned, never audited.
NotificationEndpoint is refused (400) when it names an address notify must not call
(shared.adapters.endpoint_policy: loopback, link-local, ...); it cannot change afterwards (PATCH
only changes Status), and notify checks the address again before each POST.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from shared.adapters import endpoint_policy, endpoint_secrets
from shared.adapters.catalogue import subscriptions as table
from shared.adapters.catalogue.audit import AuditEntry, record
from shared.adapters.telemetry import security_events
from shared.core.s1time import format_odata
from shared.odata import ODataError, parse_filter
from shared.odata.errors import INVALID_COUNT, INVALID_OPTION, INVALID_SKIP, INVALID_TOP
from shared.prip import audit, errors
from shared.prip.auth import OPERATOR, Principal

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_ENDPOINT_CHARS = 2048
MAX_TOP = 1000
CONTEXT = "$metadata#Subscriptions"
_READ_ONLY = ("Id", "SubmissionDate", "LastNotificationDate")


def _lower(value: object) -> object:
    # Enum members are lower-case; clients that capitalise them mean the same thing.
    return value.lower() if isinstance(value, str) else value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewSubscriptionBody(_Body):
    filter_param: str | None = Field(None, alias="FilterParam", max_length=32_768)
    notification_endpoint: str = Field(alias="NotificationEndpoint",
                                       max_length=MAX_ENDPOINT_CHARS)
    notification_username: str | None = Field(None, alias="NotificationEpUsername",
                                              max_length=256)
    notification_password: str | None = Field(None, alias="NotificationEpPassword",
                                              max_length=1024)
    status: Literal["running", "paused"] = Field("running", alias="Status")
    subscription_event: Literal["created", "deleted"] = Field("created",
                                                              alias="SubscriptionEvent")
    subscription_type: Literal["push"] = Field("push", alias="SubscriptionType")

    _enums = field_validator("status", "subscription_event", "subscription_type",
                             mode="before")(_lower)

    @field_validator("notification_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        check_endpoint(value)
        return value

    @field_validator("notification_username", "notification_password")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must hold printable characters only")
        return value


class StatusBody(_Body):
    """PATCH/PUT: only Status changes. A client that sends the whole entity back may repeat
    the other properties; they must then equal the stored ones."""

    status: Literal["running", "paused", "cancelled"] = Field(alias="Status")
    filter_param: str | None = Field(None, alias="FilterParam")
    notification_endpoint: str | None = Field(None, alias="NotificationEndpoint")
    subscription_event: str | None = Field(None, alias="SubscriptionEvent")
    subscription_type: str | None = Field(None, alias="SubscriptionType")

    _enums = field_validator("status", "subscription_event", "subscription_type",
                             mode="before")(_lower)


def check_endpoint(url: str) -> None:
    if any(not c.isprintable() or c.isspace() for c in url):
        raise ValueError("must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise ValueError(f"not a URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials belong in NotificationEpUsername/NotificationEpPassword,"
                         " not in the URL")


def parse_body(raw: bytes, model: type[_Body]) -> Any:
    """A JSON object body checked by `model`; ODataError 400 for anything else. Messages
    name fields and problems, never values (a password may be among them)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ODataError(errors.INVALID_BODY, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ODataError(errors.INVALID_BODY, "the body must be a JSON object")
    data = {k: v for k, v in data.items() if not k.startswith("@") and k not in _READ_ONLY}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_input=False, include_url=False)[:5]:
            where = ".".join(str(p) for p in item["loc"]) or "body"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where[:60]}: {message}")
        raise ODataError(errors.INVALID_BODY, "; ".join(problems)) from None


def entity(row: Mapping[str, Any]) -> dict[str, object]:
    last = row.get("last_notification_date")
    return {
        "Id": str(row["id"]),
        "Status": row["status"],
        "SubscriptionEvent": row["subscription_event"],
        "FilterParam": row["filter_param"],
        "SubmissionDate": format_odata(row["submission_date"]),
        "LastNotificationDate": format_odata(last) if isinstance(last, datetime) else None,
        "NotificationEndpoint": row["notification_endpoint"],
    }


def _owner_scope(principal: Principal) -> str | None:
    """Whose subscriptions the principal may see: its own, or everyone's for operators."""
    return None if OPERATOR in principal.roles else principal.subject


def _entry(principal: Principal, action: str, row: Mapping[str, Any], client: str | None,
           outcome: str = "ok", **details: object) -> AuditEntry:
    return AuditEntry(
        actor=audit.actor(principal), action=action, outcome=outcome,
        subscription_id=row["id"], client_address=client,
        details={"subject": principal.subject, "owner": row["owner"], **details},
    )


def create(pool: ConnectionPool, principal: Principal, raw: bytes, client: str | None, *,
           max_per_user: int, secret_keys: SecretStr | None,
           policy: endpoint_policy.EndpointPolicy | None = None) -> dict[str, object]:
    body: NewSubscriptionBody = parse_body(raw, NewSubscriptionBody)
    _allowed_endpoint(body.notification_endpoint, principal,
                      policy or endpoint_policy.current(), client)
    filter_text = (body.filter_param or "").strip()
    if filter_text:
        parse_filter(filter_text)  # ODataError 400 InvalidFilter, as for $filter
    if body.notification_password is not None and body.notification_username is None:
        raise ODataError(errors.INVALID_BODY,
                         "NotificationEpPassword needs a NotificationEpUsername")
    sealed = None
    if body.notification_password is not None:
        try:
            sealed = endpoint_secrets.seal(body.notification_password, secret_keys)
        except endpoint_secrets.SecretsUnavailable as error:
            log.error("subscription refused: %s", error)
            raise ODataError(errors.UNAVAILABLE, "this interface point cannot store endpoint"
                             " passwords safely yet (its operator must set AUXIP_SECRET_KEYS)",
                             503) from None
    new = table.NewSubscription(
        id=uuid.uuid4(), owner=principal.subject, filter_param=filter_text,
        notification_endpoint=body.notification_endpoint,
        notification_username=body.notification_username,
        notification_password=sealed,
        status=body.status, subscription_event=body.subscription_event,
    )
    with pool.connection() as conn, conn.transaction():
        # One creation at a time per owner, so that the limit holds under concurrency.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"subscriptions-of:{principal.subject}",))
        if table.count(conn, principal.subject) >= max_per_user:
            security_events.emit("auxip.quota.refused", "network", "failure",
                                 event_type="denied", reason="subscriptions_per_user",
                                 user=principal.username, source_ip=client, limit=max_per_user)
            raise ODataError(errors.TOO_MANY_SUBSCRIPTIONS,
                             f"at most {max_per_user} subscriptions per user; delete some", 403)
        row = table.insert(conn, new)
        record(conn, _entry(principal, audit.SUBSCRIPTION_CREATE, row, client,
                            filter=filter_text, endpoint=row["notification_endpoint"],
                            event=row["subscription_event"], status=row["status"],
                            basic_auth=body.notification_username is not None))
    _changed("auxip.subscription.created", "creation", principal, row, client)
    return {"@odata.context": f"{CONTEXT}/$entity", **entity(row)}


def _changed(action: str, kind: str, principal: Principal, row: Mapping[str, Any],
             client: str | None, **fields: object) -> None:
    security_events.emit(action, "configuration", "success", event_type=kind,
                         user=principal.username, source_ip=client, level=logging.INFO,
                         subscription_id=str(row["id"]), owner=row["owner"],
                         endpoint=audit.without_userinfo(row["notification_endpoint"]), **fields)


def _allowed_endpoint(url: str, principal: Principal,
                      policy: endpoint_policy.EndpointPolicy, client: str | None) -> None:
    try:
        endpoint_policy.check_literal(url, policy)
    except endpoint_policy.EndpointRefused as refused:
        # Logged: a subscriber probing internal addresses is worth an operator's look.
        log.warning("subscription of %s refused: NotificationEndpoint %s (%s)",
                    principal.subject, refused.reason, refused.code)
        security_events.emit("auxip.endpoint.refused", "network", "failure",
                             event_type="denied", reason=refused.reason, code=refused.code,
                             user=principal.username, source_ip=client,
                             endpoint=audit.without_userinfo(url)[:500], via="subscription")
        raise ODataError(errors.INVALID_BODY, "NotificationEndpoint: this endpoint address is"
                         f" not allowed ({refused.reason})") from None


def get(pool: ConnectionPool, principal: Principal, subscription_id: UUID) -> dict[str, object]:
    with pool.connection() as conn:
        row = table.get(conn, subscription_id, _owner_scope(principal))
    if row is None:
        raise errors.not_found("subscription")
    return {"@odata.context": f"{CONTEXT}/$entity", **entity(row)}


def listing(pool: ConnectionPool, principal: Principal, params: list[tuple[str, str]]
            ) -> dict[str, object]:
    top, skip, want_count = _page_options(params)
    scope = _owner_scope(principal)
    with pool.connection() as conn:
        rows = table.page(conn, scope, top=top, skip=skip)
        total = table.count(conn, scope) if want_count else None
    body: dict[str, object] = {"@odata.context": CONTEXT}
    if total is not None:
        body["@odata.count"] = total
    body["value"] = [entity(row) for row in rows[:top]]
    return body


def change_status(pool: ConnectionPool, principal: Principal, subscription_id: UUID,
                  raw: bytes, client: str | None) -> dict[str, object]:
    body: StatusBody = parse_body(raw, StatusBody)
    with pool.connection() as conn, conn.transaction():
        # Locked first: two status changes at once must audit what each really changed.
        conn.execute("SELECT 1 FROM subscriptions WHERE id = %s FOR UPDATE", (subscription_id,))
        row = table.get(conn, subscription_id, _owner_scope(principal))
        if row is None:
            raise errors.not_found("subscription")
        _same_or_refuse(body, row)
        before = row["status"]
        if before == table.CANCELLED and body.status != table.CANCELLED:
            raise ODataError(errors.CONFLICT, "a cancelled subscription cannot be resumed or"
                                              " paused; create a new one", 409)
        if body.status != before:
            row = table.set_status(conn, subscription_id, body.status)
            assert row is not None
            record(conn, _entry(principal, audit.SUBSCRIPTION_UPDATE, row, client,
                                status_before=before, status=body.status))
            _changed("auxip.subscription.changed", "change", principal, row, client,
                     status_before=before, status=body.status)
    return {"@odata.context": f"{CONTEXT}/$entity", **entity(row)}


def _same_or_refuse(body: StatusBody, row: Mapping[str, Any]) -> None:
    stored = {"FilterParam": (body.filter_param, row["filter_param"]),
              "NotificationEndpoint": (body.notification_endpoint, row["notification_endpoint"]),
              "SubscriptionEvent": (body.subscription_event, row["subscription_event"]),
              "SubscriptionType": (body.subscription_type, "push")}
    changed = [name for name, (sent, kept) in stored.items()
               if sent is not None and sent.strip() != kept]
    if changed:
        raise ODataError(errors.INVALID_BODY,
                         f"only Status can change; {', '.join(changed)} cannot (create a new"
                         " subscription instead)")


def delete(pool: ConnectionPool, principal: Principal, subscription_id: UUID,
           client: str | None) -> None:
    with pool.connection() as conn, conn.transaction():
        row = table.get(conn, subscription_id, _owner_scope(principal))
        if row is None or not table.delete(conn, subscription_id):
            raise errors.not_found("subscription")
        record(conn, _entry(principal, audit.SUBSCRIPTION_DELETE, row, client,
                            status=row["status"]))
    _changed("auxip.subscription.deleted", "deletion", principal, row, client)


def _page_options(params: list[tuple[str, str]]) -> tuple[int, int, bool]:
    top, skip, count = MAX_TOP, 0, False
    for name, value in params:
        key = name.lower()
        if not key.startswith("$"):
            continue
        text = value.strip()
        if key in ("$top", "$skip"):
            code = INVALID_TOP if key == "$top" else INVALID_SKIP
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                raise ODataError(code, f"{key} must be a non-negative integer")
            number = int(text)
            if key == "$top" and number > MAX_TOP:
                raise ODataError(code, f"$top must be at most {MAX_TOP}")
            top, skip = (number, skip) if key == "$top" else (top, number)
        elif key == "$count":
            if text.lower() not in ("true", "false"):
                raise ODataError(INVALID_COUNT, "$count must be true or false")
            count = text.lower() == "true"
        elif key != "$format" or text.lower() not in ("json", "application/json"):
            raise ODataError(INVALID_OPTION,
                             f"{name[:40]} is not supported on Subscriptions"
                             " (supported: $top, $skip, $count, $format=json)")
    return top, skip, count
