"""The routing configuration file (YAML): sources to poll and routes to targets.

    sources:
      - name: adgs
        kind: odata            # odata | s3 | directory | sftp
        url: https://adgs.example.org/odata/v1
        auth: {type: oauth2, grant: password, token_url: ..., client_id: ...,
               username: ..., password: "${AUXIP_ADGS_PASSWORD}"}
    routes:
      - name: orbits-to-mission-planning
        match: {product_type: [AUX_RESORB, AUX_POEORB]}
        target: {kind: sftp, host: ..., path: /inbox, ...}

Secrets (passwords, secret keys, private keys, tokens) must be references to environment
variables, `${AUXIP_...}`: the file and the catalogue never hold one. Any other text value
may be a reference as well. References are expanded by the function that uses them, from
its own environment (`expand`), so a secret rotated in the deployment needs no reload.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

_REFERENCE = re.compile(r"\$\{(AUXIP_[A-Z0-9_]+)\}")
_ONLY_REFERENCE = re.compile(r"^\$\{AUXIP_[A-Z0-9_]+\}$")
_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class ConfigError(ValueError):
    pass


def _secret_reference(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get("expanded"):
        return value  # the value of the reference, in a function's memory only
    if not _ONLY_REFERENCE.match(value):
        # Never echo the value: it may be the very secret that must not be there.
        raise ValueError("must be a reference to an environment variable, ${AUXIP_...}, "
                         "never the secret itself")
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


SecretRef = Annotated[str, AfterValidator(_secret_reference)]
Patterns = Annotated[list[str], BeforeValidator(_as_list)]


_SECRET_FIELDS = frozenset({"password", "client_secret", "secret_key", "private_key",
                            "private_key_passphrase", "token"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self) -> Any:
        # An expanded model in a log line or a traceback shows no secret.
        for name, value in super().__repr_args__():
            yield name, ("***" if name in _SECRET_FIELDS and value is not None else value)


# --- credentials -------------------------------------------------------------------------

class OAuth2(_Model):
    """An OAuth2 token endpoint (Keycloak realms, the ESA services' IAM)."""

    type: Literal["oauth2"] = "oauth2"
    token_url: str
    grant: Literal["password", "client_credentials"]
    client_id: str
    client_secret: SecretRef | None = None
    username: str | None = None
    password: SecretRef | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _grant_needs(self) -> OAuth2:
        if self.grant == "password" and not (self.username and self.password):
            raise ValueError("the password grant needs username and password")
        if self.grant == "client_credentials" and not self.client_secret:
            raise ValueError("the client_credentials grant needs client_secret")
        return self


class Basic(_Model):
    type: Literal["basic"] = "basic"
    username: str
    password: SecretRef


class Bearer(_Model):
    """A long-lived token some HTTP receivers hand out."""

    type: Literal["bearer"] = "bearer"
    token: SecretRef


HttpAuth = Annotated[OAuth2 | Basic | Bearer, Field(discriminator="type")]


class SshLogin(_Model):
    """How to reach an SFTP server. The server's host key is pinned (`host_key`, as in
    known_hosts: "ssh-ed25519 AAAA..."): an unknown or changed key is refused."""

    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    password: SecretRef | None = None
    private_key: SecretRef | None = None  # the key itself (PEM/OpenSSH text) in the variable
    private_key_passphrase: SecretRef | None = None
    host_key: str
    timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _some_credential(self) -> SshLogin:
        if not (self.password or self.private_key):
            raise ValueError("give password or private_key")
        return self


# --- sources -----------------------------------------------------------------------------

class _Source(_Model):
    name: str = Field(pattern=_NAME)
    enabled: bool = True
    # The PingSource ticks every minute; a source is polled when this much has passed.
    interval_s: float = Field(60.0, ge=0)
    # Under this prefix in the inbox; default `poll/<name>/`.
    inbox_prefix: str | None = None
    # Globs on the product name (a file, or the X.SAFE folder a file is in).
    include: Patterns = Field(default_factory=lambda: ["S1*"])
    exclude: Patterns = Field(default_factory=lambda: [".*", "*.part", "*.tmp", "*.partial"])
    max_per_run: int = Field(1000, ge=1)
    # An item failing this often stops holding back the OData window (see polling).
    max_failures: int = Field(5, ge=1)

    def inbox_root(self) -> str:
        """Where its files go in the inbox: '' (the root) or a prefix ending in '/'."""
        root = f"poll/{self.name}/" if self.inbox_prefix is None else self.inbox_prefix
        return root if not root or root.endswith("/") else root + "/"

    def wants(self, product_name: str) -> bool:
        return (any(fnmatch.fnmatchcase(product_name, p) for p in self.include)
                and not any(fnmatch.fnmatchcase(product_name, p) for p in self.exclude))


class ODataSource(_Source):
    """Another AUXIP, PRIP or ADGS: its Products, by a moving PublicationDate window."""

    kind: Literal["odata"]
    url: str  # the service root, ending in /odata/v1
    auth: OAuth2 | Basic | None = Field(None, discriminator="type")
    filter: str | None = None  # ANDed with the window, e.g. "startswith(Name,'S1')"
    start: datetime | None = None  # the window's first lower bound; default: a day ago
    overlap_s: float = Field(600.0, ge=0)
    page_size: int = Field(100, ge=1, le=1000)
    timeout_s: float = Field(60.0, gt=0)


class _FileSource(_Source):
    recursive: bool = True
    # A file younger than this may still be being written: left for a later poll.
    settle_s: float = Field(30.0, ge=0)
    # Remove it at the source once it is safely in the inbox (outbox directories).
    delete_after_fetch: bool = False


class S3Source(_FileSource):
    kind: Literal["s3"]
    endpoint: str | None = None  # default: auxip's own S3 endpoint
    region: str = "us-east-1"
    bucket: str
    prefix: str = ""
    access_key: str | None = None  # with secret_key; both absent: auxip's own credentials
    secret_key: SecretRef | None = None
    settle_s: float = Field(0.0, ge=0)  # an S3 object is whole once listed


class DirectorySource(_FileSource):
    kind: Literal["directory"]
    path: str


class SftpSource(_FileSource):
    kind: Literal["sftp"]
    login: SshLogin
    path: str


Source = Annotated[ODataSource | S3Source | DirectorySource | SftpSource,
                   Field(discriminator="kind")]


# --- routes ------------------------------------------------------------------------------

class Match(_Model):
    """Every field given must hold; a list holds when any entry does. Globs use fnmatch
    (`AUX_*ORB`, `S1?_OPER_*`), `name_regex` a Python regex searched in the name."""

    product_type: Patterns | None = None
    name: Patterns | None = None
    name_regex: str | None = None
    platform_serial: Patterns | None = None  # "A".."D", "" for all units
    origin: Patterns | None = None  # "inbox", "poll:<source>", "poll:*"
    attributes: dict[str, str | int | float | bool | list[str | int | float | bool]] = \
        Field(default_factory=dict)

    @model_validator(mode="after")
    def _regex_compiles(self) -> Match:
        if self.name_regex is not None:
            try:
                re.compile(self.name_regex)
            except re.error as error:
                raise ValueError(f"name_regex: {error}") from None
        return self


class Retry(_Model):
    """Attempt n waits backoff_s * 2^(n-1) (at most max_backoff_s) before attempt n+1."""

    attempts: int = Field(10, ge=1)
    backoff_s: float = Field(30.0, ge=0)
    max_backoff_s: float = Field(3600.0, ge=0)

    def delay(self, attempts_made: int) -> float:
        return min(self.backoff_s * 2 ** max(attempts_made - 1, 0), self.max_backoff_s)


# Placeholders of target paths: {name}, {product_type}, {platform_serial}, {start}
# (ContentDate/Start, e.g. {start:%Y/%m}) and {published} (PublicationDate).
class S3Target(_Model):
    """An S3 bucket; `auxip` is another auxip's inbox bucket (its notification does the rest)."""

    kind: Literal["s3", "auxip"]
    endpoint: str | None = None
    region: str = "us-east-1"
    bucket: str
    key: str = "{name}"
    access_key: str | None = None
    secret_key: SecretRef | None = None


class HttpTarget(_Model):
    """HTTP(S) PUT of the bytes at `url` (a template). `verify`: `readback` GETs the URL
    back and compares MD5; `head` needs Content-Length, and any ETag/Content-MD5/Digest
    the server gives must agree; `none` trusts a 2xx."""

    kind: Literal["http"]
    url: str
    auth: HttpAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    verify: Literal["readback", "head", "none"] = "readback"
    timeout_s: float = Field(60.0, gt=0)


class SftpTarget(_Model):
    """Written as `.<name>.part`, then renamed: a reader never sees half a file."""

    kind: Literal["sftp"]
    login: SshLogin
    path: str  # the directory (a template)
    verify: Literal["readback", "size"] = "readback"


class DirectoryTarget(_Model):
    kind: Literal["directory"]
    path: str  # the directory (a template)
    verify: Literal["readback", "size"] = "readback"


Target = Annotated[S3Target | HttpTarget | SftpTarget | DirectoryTarget,
                   Field(discriminator="kind")]


class Route(_Model):
    name: str = Field(pattern=_NAME)
    enabled: bool = True
    match: Match = Field(default_factory=Match)
    exclude: Match | None = None  # e.g. origin of the target itself: no loops
    target: Target
    retry: Retry = Field(default_factory=Retry)


class RoutingFile(_Model):
    sources: list[Source] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RoutingFile:
        for what, names in (("source", [s.name for s in self.sources]),
                            ("route", [r.name for r in self.routes])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} names must be unique: {', '.join(twice)}")
        return self


# --- loading and expansion ----------------------------------------------------------------

def load_file(path: Path) -> RoutingFile:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        return RoutingFile.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}") from None


def _describe(error: ValidationError) -> str:
    # Without the input values: a literal secret would otherwise be printed back.
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                     for e in error.errors(include_input=False, include_url=False))


def source_from_row(row: Mapping[str, Any]) -> Any:
    """A `sources` row back into its model."""
    return _parse(Source, {**row["config"], "name": row["name"], "kind": row["kind"],
                           "enabled": row["enabled"]}, f"source {row['name']}")


def route_from_row(row: Mapping[str, Any]) -> Route:
    return _parse(Route, {**row["rule"], "name": row["name"], "enabled": row["enabled"],
                          "target": row["target"]}, f"route {row['name']}")


def source_row(source: Any) -> dict[str, Any]:
    config = source.model_dump(mode="json", exclude={"name", "kind", "enabled"})
    return {"name": source.name, "kind": source.kind, "config": config,
            "enabled": source.enabled}


def route_row(route: Route) -> dict[str, Any]:
    rule = route.model_dump(mode="json", include={"match", "exclude", "retry"})
    return {"name": route.name, "rule": rule, "target": route.target.model_dump(mode="json"),
            "enabled": route.enabled}


M = TypeVar("M", bound=BaseModel)


def _parse(model: Any, data: Mapping[str, Any], what: str, **context: Any) -> Any:
    try:
        return TypeAdapter(model).validate_python(dict(data), context=context or None)
    except ValidationError as error:
        raise ConfigError(f"{what}: {_describe(error)}") from None


def expand(model: M, environ: Mapping[str, str]) -> M:
    """`model` with every `${AUXIP_...}` replaced from `environ`; ConfigError naming the
    variable when one is unset. Only functions call it, on the copy they use."""
    def replace(value: Any) -> Any:
        if isinstance(value, str):
            return _REFERENCE.sub(lambda m: _lookup(m.group(1), environ), value)
        if isinstance(value, dict):
            return {k: replace(v) for k, v in value.items()}
        if isinstance(value, list):
            return [replace(v) for v in value]
        return value

    data = replace(model.model_dump(mode="json"))
    return _parse(type(model), data, getattr(model, "name", type(model).__name__),
                  expanded=True)


def _lookup(variable: str, environ: Mapping[str, str]) -> str:
    try:
        return environ[variable]
    except KeyError:
        raise ConfigError(f"environment variable {variable} is not set") from None
