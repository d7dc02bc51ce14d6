"""API abuse over real HTTP against prip as the stack runs it (functions-framework under
gunicorn), with tokens from the stack's own issuer: property-based queries and
Subscription bodies, forged tokens, oversized requests. Never a 500, every refusal an
OData error (or the HTTP server's own 4xx for what never reaches prip), never a byte of
another user's subscriptions. tests/prip/test_hostile.py and test_access.py cover free-form
text and the basic forgeries against an in-process server; these build on them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack import demo_products
from devstack.stack.up import StackInfo
from tests.reliability import clients, end_state, forgery, odata_grammar, orbits

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)

pytestmark = pytest.mark.e2e


class Api:
    def __init__(self, info: StackInfo, http: httpx.Client) -> None:
        self.info = info
        self.root = clients.prip_root(info)
        self.http = http

    def request(self, method: str, path: str, user: str | None = "alice", *,
                headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        auth = clients.bearer(self.info.settings, user) if user else {}
        return self.http.request(method, f"{self.root}/{path}".rstrip("/"),
                                 headers={**auth, **(headers or {})}, **kwargs)

    def get(self, path: str, user: str | None = "alice", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, user, **kwargs)


def assert_well_formed(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400 and answer.request.method != "HEAD":
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def api(pipeline: StackInfo, http: httpx.Client) -> Api:
    return Api(pipeline, http)


@pytest.fixture(scope="module")
def catalogue(pipeline: StackInfo, api: Api) -> list[dict]:
    """Orbit files and zipped SAFE products, published through the pipeline."""
    files = orbits.batch(12, epoch=6)
    for day in (1, 2):
        folder, content = demo_products.aux_safe("B", "AUX_INS", datetime(2046, 1, day, tzinfo=UTC),
                                                 datetime(2046, 1, 1, tzinfo=UTC))
        files.append((folder + ".zip", demo_products.zip_folder(folder, content)))
    orbits.Uploader(pipeline.settings, files).start().join(60)
    logical = [name.removesuffix(".zip") if name.endswith(".SAFE.zip") else name
               for name, _ in files]
    end_state.settle(pipeline, logical, timeout_s=120)
    answer = api.get("Products", params={"$filter": "contains(Name,'_V2046')", "$top": "100"})
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


@pytest.fixture(scope="module")
def canary() -> Iterator[clients.Canary]:
    with clients.Canary().serving() as running:
        yield running


@pytest.fixture(scope="module")
def bobs(api: Api, canary: clients.Canary) -> Iterator[list[dict]]:
    """Subscriptions of bob, which carol must never see, change or learn of."""
    made = []
    for i in range(3):
        answer = api.request("POST", "Subscriptions", "bob", json={
            "NotificationEndpoint": f"{canary.url}/bob-secret-endpoint-{i}",
            "FilterParam": f"contains(Name,'bob-{i}')", "NotificationEpUsername": "bob-user",
            "NotificationEpPassword": "bob-password"})
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    yield made
    for sub in made:
        api.request("DELETE", f"Subscriptions({sub['Id']})", "bob")


# --- query options -------------------------------------------------------------------------


@PROPERTY
@given(options=odata_grammar.valid_options())
def test_documented_queries_answer_200(api: Api, catalogue: list[dict],
                                       options: dict[str, str]) -> None:
    answer = api.get("Products", params=options)
    assert answer.status_code == 200, (options, answer.text[:500])
    body = answer.json()
    top = int(options.get("$top", "1000"))
    assert isinstance(body["value"], list) and len(body["value"]) <= top
    if options.get("$count", "").strip().lower() == "true":
        assert body["@odata.count"] >= len(body["value"])
    counted = api.get("Products/$count", params=options)
    assert counted.status_code == 200 and counted.text.isdigit(), counted.text[:300]


@PROPERTY
@given(options=odata_grammar.mutated_options(),
       path=st.sampled_from(["Products", "Products/$count", "Products({id})",
                             "Products({id})/Attributes", "Subscriptions", "$metadata", ""]))
def test_mutated_queries_are_never_a_500(api: Api, catalogue: list[dict],
                                         options: dict[str, str], path: str) -> None:
    answer = api.get(path.format(id=catalogue[0]["Id"]), "bob", params=options)
    assert_well_formed(answer)


# --- subscriptions ---------------------------------------------------------------------------


@st.composite
def subscription_bodies(draw: st.DrawFn, canary_url: str) -> bytes:
    body: dict[str, Any] = {}
    fields = {
        "FilterParam": st.one_of(odata_grammar.FILTER, odata_grammar.FILTER.flatmap(
            odata_grammar.mutated), TEXT, st.integers(), st.none()),
        "NotificationEndpoint": st.one_of(
            st.sampled_from([f"{canary_url}/n", "https://subscriber.example.org/auxip",
                             "http://[::1]:1/x", "http://x:99999/", "ftp://x/", "javascript:x",
                             "http://user:pw@x.example.org/", "http://x/\u0000", ""]),
            TEXT, st.text(min_size=2040, max_size=2100).map(lambda t: f"http://x/{t}")),
        "NotificationEpUsername": st.one_of(TEXT, st.text(min_size=250, max_size=300)),
        "NotificationEpPassword": st.one_of(TEXT, st.text(min_size=1020, max_size=1030)),
        "Status": st.sampled_from(["running", "paused", "cancelled", "RUNNING", "Paused", "x",
                                   ""]),
        "SubscriptionEvent": st.sampled_from(["created", "deleted", "CREATED", "evicted"]),
        "SubscriptionType": st.sampled_from(["push", "pull", "PUSH"]),
        "Id": st.uuids().map(str),
        "SubmissionDate": st.just("2020-01-01T00:00:00.000Z"),
        "@odata.context": st.just("$metadata#Subscriptions/$entity"),
        "Owner": st.just("bob"),
        "Extra": TEXT,
    }
    for name, strategy in fields.items():
        if name == "NotificationEndpoint" or draw(st.integers(0, 2)) == 0:
            body[name] = draw(strategy)
    return json.dumps(body).encode()


def test_subscription_bodies(api: Api, canary: clients.Canary, bobs: list[dict]) -> None:
    @PROPERTY
    @given(raw=subscription_bodies(canary.url))
    def check(raw: bytes) -> None:
        created = api.request("POST", "Subscriptions", "carol", content=raw,
                              headers={"Content-Type": "application/json"})
        assert_well_formed(created)
        assert created.status_code in (201, 400), created.text[:300]
        if created.status_code != 201:
            return
        entity = created.json()
        assert "NotificationEpPassword" not in entity and "Owner" not in entity
        key = f"Subscriptions({entity['Id']})"
        assert entity["Id"] not in {sub["Id"] for sub in bobs}  # a client-chosen Id is ignored
        assert api.get(key, "carol").status_code == 200
        assert api.get(key, "bob").status_code == 404
        assert api.request("DELETE", key, "carol").status_code == 204

    check()


KEY_FORMS = ["{id}", "'{id}'", "Id={id}", "guid'{id}'", "{upper}", " {id} ", "Id='{id}'"]


def test_other_subscribers_data_never_leaks(api: Api, bobs: list[dict]) -> None:
    secrets = [s for sub in bobs for s in (sub["Id"], sub["NotificationEndpoint"])] + [
        "bob-user", "bob-password"]

    @PROPERTY
    @given(params=st.lists(st.tuples(st.sampled_from(["$filter", "$top", "$skip", "$count",
                                                      "$orderby", "$select", "owner",
                                                      "$expand", "user"]),
                                     st.one_of(TEXT, st.sampled_from(
                                         ["bob", "true", "1000", "0", "Owner eq 'bob'",
                                          "contains(NotificationEndpoint,'bob')"]))),
                           max_size=4),
           which=st.integers(0, 2), form=st.sampled_from(KEY_FORMS),
           method=st.sampled_from(["GET", "HEAD", "PATCH", "PUT", "DELETE"]))
    def check(params: list[tuple[str, str]], which: int, form: str, method: str) -> None:
        listing = api.get("Subscriptions", "carol", params=params)
        assert_well_formed(listing)
        assert not any(secret in listing.text for secret in secrets)
        target = bobs[which]["Id"]
        key = form.format(id=target, upper=target.upper())
        body = json.dumps({"Status": "paused"}).encode() if method in ("PATCH", "PUT") else None
        answer = api.request(method, f"Subscriptions({key})", "carol", content=body,
                             headers={"Content-Type": "application/json"})
        assert_well_formed(answer)
        assert answer.status_code in (400, 404), (method, key, answer.status_code)
        # A refusal may quote the key carol sent; nothing else of bob's may be in it.
        assert not any(secret in answer.text for secret in secrets if secret != target)

    check()
    mine = api.get("Subscriptions", "bob").json()["value"]
    assert {(s["Id"], s["Status"]) for s in mine} >= {(s["Id"], "running") for s in bobs}


# --- tokens ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forger(pipeline: StackInfo, canary: clients.Canary) -> forgery.Forger:
    s = pipeline.settings
    assert s.token_url
    return forgery.Forger(s.token_url.split("/protocol/", 1)[0], s.state_dir, canary.url)




def _token_paths(catalogue: list[dict]) -> list[str]:
    one = catalogue[0]["Id"]
    return ["Products", f"Products({one})", f"Products({one})/$value", "Subscriptions",
            "$metadata", ""]


def test_forged_tokens_are_refused(api: Api, catalogue: list[dict], forger: forgery.Forger,
                                   canary: clients.Canary) -> None:
    genuine = forger.signed(forger.claims())
    good = api.get("Products", None, headers={"Authorization": f"Bearer {genuine}"})
    assert good.status_code == 200  # the forger's realm key is the real one
    refused = {}
    for kind, make in forger.kinds().items():
        token = make()
        for path in _token_paths(catalogue):
            answer = api.get(path, None, headers={"Authorization": f"Bearer {token}"})
            refused[(kind, path)] = answer.status_code
            assert_well_formed(answer)
            if answer.status_code == 401:
                assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        as_query = api.get(f"Products({catalogue[0]['Id']})/$value", None,
                           params={"token": token})
        refused[(kind, "$value?token=")] = as_query.status_code
    assert {k: v for k, v in refused.items() if v != 401} == {}
    assert canary.hits == []  # no jku, x5u or jwk was ever fetched


def test_roles_of_another_client_grant_nothing(api: Api, forger: forgery.Forger) -> None:
    token = forger.roles_of_another_client()
    for path in ("Products", "Subscriptions"):
        answer = api.get(path, None, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403, answer.text


# --- oversized requests ----------------------------------------------------------------------


def _raw_get(info: StackInfo, target: bytes, token: str) -> int:
    """A GET whose request line no client library would build; returns the status."""
    port = info.layout.function_port("prip")
    with socket.create_connection((info.layout.host, port), timeout=60) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: auxip\r\nAuthorization: Bearer "
                     + token.encode() + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


OVERSIZED = {
    "1 MB $filter": lambda api: _raw_get(api.info, b"/odata/v1/Products?$filter=contains(Name,'"
                                         + b"a" * 1_000_000 + b"')",
                                         clients.token(api.info.settings, "alice")),
    "1 MB path": lambda api: _raw_get(api.info, b"/odata/v1/Products(" + b"1" * 1_000_000
                                      + b")", clients.token(api.info.settings, "alice")),
    "64 KiB header": lambda api: api.get("Products",
                                         headers={"X-Padding": "a" * 65536}).status_code,
    "300 headers": lambda api: api.get("Products", headers={
        f"X-H{i}": "v" for i in range(300)}).status_code,
    "1 MiB cookie": lambda api: api.get("Products", headers={
        "Cookie": "a=" + "b" * 2**20}).status_code,
    "20 KiB token": lambda api: api.get("Products", None, headers={
        "Authorization": "Bearer " + "a" * 20_000}).status_code,
    "1 MiB body": lambda api: api.request(
        "POST", "Subscriptions", "bob", content=b'{"x":"' + b"a" * 2**20 + b'"}',
        headers={"Content-Type": "application/json"}).status_code,
    "64 MiB body": lambda api: api.request(
        "POST", "Subscriptions", "bob", content=b"a" * 64 * 2**20,
        headers={"Content-Type": "application/json"}).status_code,
    "64 MiB chunked body": lambda api: api.request(
        "POST", "Subscriptions", "bob", content=_chunks(64 * 2**20),
        headers={"Content-Type": "application/json"}).status_code,
    "deeply nested JSON body": lambda api: api.request(
        "POST", "Subscriptions", "bob", content=b"[" * 30_000 + b"]" * 30_000,
        headers={"Content-Type": "application/json"}).status_code,
}


@pytest.mark.parametrize("kind", sorted(OVERSIZED))
def test_oversized_requests_are_refused_and_the_service_stays_up(api: Api, kind: str) -> None:
    status = OVERSIZED[kind](api)
    assert 400 <= status < 500, status
    # On a new connection: the refused one may be closed (see docs/reliability.md).
    with httpx.Client(timeout=30) as fresh_client:
        answer = fresh_client.get(f"{api.root}/Products", params={"$top": "1"},
                                  headers=clients.bearer(api.info.settings, "alice"))
    assert answer.status_code == 200
