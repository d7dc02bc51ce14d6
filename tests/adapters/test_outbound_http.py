"""The client for addresses others choose (shared/adapters/outbound_http.py), over real HTTP
on loopback: it connects only where the outbound policy allows, judging the address it
connects to itself (IP literals in every form, names resolved by the system: `localhost`
and this machine's own name), and answers a redirect without following it.

One receiver is allowed by its exact address and port (`127.0.0.1:<port>`); a second one,
listening on loopback too, stands for the service the policy protects: it answers, so only
the policy keeps the client away, and its hits are counted."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from shared.adapters import outbound_http
from shared.adapters.endpoint_policy import EndpointPolicy, EndpointRefused


@dataclass
class Server:
    host: str = "127.0.0.1"
    redirect_to: str | None = None
    hits: list[str] = field(default_factory=list)
    server: BaseWSGIServer | None = None

    def start(self) -> Server:
        self.server = make_server(self.host, 0, self._app, threaded=True)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def _app(self, environ: dict, start_response: object) -> object:
        request = Request(environ)
        self.hits.append(request.path)
        if self.redirect_to is not None:
            answer = Response(status=307, headers={"Location": self.redirect_to})
        else:
            answer = Response("ok")
        return answer(environ, start_response)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def allowed() -> Iterator[Server]:
    running = Server().start()
    yield running
    assert running.server is not None
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture(scope="module")
def protected() -> Iterator[Server]:
    running = Server().start()
    yield running
    assert running.server is not None
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def client(allowed: Server) -> Iterator[httpx.Client]:
    policy = EndpointPolicy(outbound_allowed=f"127.0.0.1:{allowed.port}")
    with outbound_http.client(policy, timeout=5) as judged:
        yield judged


def test_the_allowed_address_and_port_is_called(client: httpx.Client, allowed: Server) -> None:
    answer = client.get(f"http://127.0.0.1:{allowed.port}/fine")
    assert answer.status_code == 200 and answer.text == "ok"
    assert "/fine" in allowed.hits


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1", "2130706433", "[::ffff:127.0.0.1]", "[::1]", "localhost",
    socket.gethostname(),
])
def test_loopback_in_any_form_or_name_is_refused(client: httpx.Client, protected: Server,
                                                 host: str) -> None:
    before = list(protected.hits)
    with pytest.raises(EndpointRefused) as refused:
        client.get(f"http://{host}:{protected.port}/secret")
    assert refused.value.code == "outbound_address_denied"
    assert protected.hits == before  # never reached


@pytest.mark.parametrize(("url", "network"), [
    ("http://10.0.0.1/", "10.0.0.0/8"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16"),
    ("http://192.168.0.1:8080/", "192.168.0.0/16"),
    ("http://[fd00::1]/", "fc00::/7"),
])
def test_private_and_metadata_addresses_are_refused_without_a_connection(
        client: httpx.Client, url: str, network: str) -> None:
    # Refused before any connection: no timeout to wait for, though nothing answers there.
    with pytest.raises(EndpointRefused, match=f"in the denied network {network}"):
        client.get(url)


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/secret",
                                    "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_is_answered_not_followed(allowed: Server, protected: Server,
                                             target: str) -> None:
    where = target.format(port=protected.port)
    redirecting = Server(redirect_to=where).start()
    before = list(protected.hits)
    try:
        policy = EndpointPolicy(outbound_allowed=f"127.0.0.1:{redirecting.port}")
        with outbound_http.client(policy, timeout=5) as judged:
            answer = judged.post(f"http://127.0.0.1:{redirecting.port}/hook", json={})
            assert answer.status_code == 307 and answer.headers["Location"] == where
            assert answer.next_request is not None  # httpx would follow it: we do not
            with pytest.raises(EndpointRefused):
                judged.send(answer.next_request)  # and following it by hand is refused
    finally:
        assert redirecting.server is not None
        redirecting.server.shutdown()
        redirecting.server.server_close()
    assert redirecting.hits == ["/hook"] and protected.hits == before


def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch,
                                          allowed: Server, protected: Server) -> None:
    # A proxy would choose the address itself: the policy would judge only the proxy.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{protected.port}")
    policy = EndpointPolicy(outbound_allowed=f"127.0.0.1:{allowed.port}")
    before = list(protected.hits)
    with outbound_http.client(policy, timeout=5) as judged:
        assert judged.get(f"http://127.0.0.1:{allowed.port}/direct").status_code == 200
    assert protected.hits == before
