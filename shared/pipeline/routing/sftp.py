"""SFTP sessions (paramiko) for sources and targets: the server's host key is pinned from
the configuration (known_hosts format) and anything else is refused; no agent, no keys
picked up from ~/.ssh: a function uses only the credentials its configuration names."""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import paramiko

from shared.adapters import endpoint_policy
from shared.pipeline.routing.config import ConfigError, SshLogin


class SftpError(RuntimeError):
    pass


@contextmanager
def session(login: SshLogin, policy: endpoint_policy.EndpointPolicy | None = None
            ) -> Iterator[paramiko.SFTPClient]:
    """With a `policy` (targets), the TCP connection goes to an address it judged
    (EndpointRefused otherwise), never to a second DNS answer."""
    client = paramiko.SSHClient()
    known_as = login.host if login.port == 22 else f"[{login.host}]:{login.port}"
    entry = paramiko.hostkeys.HostKeyEntry.from_line(f"{known_as} {login.host_key.strip()}")
    if entry is None or entry.key is None:
        raise ConfigError(f"host_key of {login.host} is not 'type base64' as in known_hosts")
    client.get_host_keys().add(known_as, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        sock = None if policy is None else endpoint_policy.connect_judged(
            login.host, login.port, policy, login.timeout_s)
    except OSError as error:
        raise SftpError(f"sftp://{login.host}:{login.port}: {type(error).__name__}: "
                        f"{error}") from None
    try:
        client.connect(login.host, login.port, username=login.username, sock=sock,
                       password=login.password, pkey=_private_key(login),
                       look_for_keys=False, allow_agent=False, timeout=login.timeout_s,
                       banner_timeout=login.timeout_s, auth_timeout=login.timeout_s)
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(login.timeout_s)
    except (paramiko.SSHException, OSError) as error:
        client.close()
        raise SftpError(f"sftp://{login.host}:{login.port}: {type(error).__name__}: "
                        f"{error}") from None
    try:
        yield sftp
    finally:
        sftp.close()
        client.close()


def _private_key(login: SshLogin) -> paramiko.PKey | None:
    if not login.private_key:
        return None
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(login.private_key),
                                         password=login.private_key_passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigError(f"private_key for {login.host} is no Ed25519, ECDSA or RSA key "
                      "(or its passphrase is wrong)")


def walk(sftp: paramiko.SFTPClient, root: str, recursive: bool
         ) -> Iterator[tuple[str, paramiko.SFTPAttributes]]:
    """(path relative to root, attributes) of every regular file, sorted by path."""
    for entry in sorted(sftp.listdir_attr(root), key=lambda e: e.filename):
        if entry.filename.startswith(".") or entry.st_mode is None:
            continue
        path = f"{root.rstrip('/')}/{entry.filename}"
        if stat.S_ISDIR(entry.st_mode):
            if recursive:
                for relative, attributes in walk(sftp, path, recursive):
                    yield f"{entry.filename}/{relative}", attributes
        elif stat.S_ISREG(entry.st_mode):
            yield entry.filename, entry


def makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    """mkdir -p, one level at a time (SFTP has no recursive mkdir)."""
    current = "/" if path.startswith("/") else ""
    for part in [p for p in path.split("/") if p]:
        current = f"{current}{part}/"
        try:
            sftp.stat(current)
        except FileNotFoundError:
            try:
                sftp.mkdir(current)
            except OSError:
                sftp.stat(current)  # made meanwhile by another writer, or really failed


def replace(sftp: paramiko.SFTPClient, temporary: str, final: str) -> None:
    """Rename over an existing file: posix-rename where the server offers it (OpenSSH
    does), else remove then rename."""
    try:
        sftp.posix_rename(temporary, final)
        return
    except OSError:
        pass
    try:
        sftp.remove(final)
    except FileNotFoundError:
        pass
    sftp.rename(temporary, final)
