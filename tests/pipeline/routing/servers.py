"""Real servers the routing tests talk to on loopback: an SFTP server (asyncssh, in a
thread of this process) and an HTTP receiver (werkzeug) that stores what is PUT to it,
either faithfully or with one byte changed (a target that stores different bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

USER = "mpl"
PASSWORD = "mpl-secret"


def free_port() -> int:
    """A port nothing listens on now (for a server that starts later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else data


class _Login(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True  # authentication required for everyone

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == (USER, PASSWORD)


class _CorruptingSftp(asyncssh.SFTPServer):
    """Stores every file with its first byte changed, and says nothing about it."""

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        return super().write(file_obj, offset, flip_first_byte(data) if offset == 0 else data)


@dataclass
class SftpServer:
    root: Path
    corrupt: bool = False
    port: int = 0
    host_key: str = ""  # "ssh-ed25519 AAAA...", as a known_hosts entry writes it
    client_key: str = ""  # a private key (OpenSSH format) the server accepts for USER
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _server: Any = None

    def start(self) -> SftpServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("the SFTP server did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key = host_key.export_public_key().decode().strip()
        self.client_key = client_key.export_private_key().decode()
        server_class = _CorruptingSftp if self.corrupt else asyncssh.SFTPServer
        root = str(self.root).encode()
        self._server = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key], server_factory=_Login,
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_key.export_public_key().decode()),
            sftp_factory=lambda channel: server_class(channel, chroot=root),
            allow_scp=False)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def login(self, **override: Any) -> dict[str, Any]:
        """A `login:` block for the routing configuration (password by reference)."""
        return {"host": "127.0.0.1", "port": self.port, "username": USER,
                "password": "${AUXIP_TEST_SFTP_PASSWORD}", "host_key": self.host_key,
                "timeout_s": 10, **override}


@dataclass
class Receiver:
    """An HTTP endpoint for PUT, GET and HEAD of whole files, kept in memory."""

    corrupt: bool = False
    etag: bool = False  # answer with the MD5 of what it holds as ETag, as S3-like servers do
    stored: dict[str, bytes] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)
    redirect_to: str | None = None  # answer every request with a 307 there
    host: str = "127.0.0.1"
    server: BaseWSGIServer | None = None

    def start(self, port: int = 0) -> Receiver:
        self.server = make_server(self.host, port, self._app, threaded=True)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        if self.redirect_to is not None:
            self.puts.append(path)
            response = Response(status=307, headers={"Location": self.redirect_to})
        elif request.method == "PUT":
            body = request.get_data()
            self.puts.append(path)
            self.stored[path] = flip_first_byte(body) if self.corrupt else body
            response = Response(status=201)
        elif request.method in ("GET", "HEAD") and path in self.stored:
            response = Response(self.stored[path], content_type="application/octet-stream")
            if self.etag:
                response.set_etag(hashlib.md5(self.stored[path]).hexdigest())
        else:
            response = Response(status=404)
        return response(environ, start_response)
