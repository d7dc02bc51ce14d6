"""Another AUXIP, PRIP or ADGS, polled through its OData API as its clients do:

    GET <root>/Products?$filter=PublicationDate gt <since - overlap> [and (<filter>)]
        &$orderby=PublicationDate asc&$top=<page_size>&$skip=<n>
    GET <root>/Products(<Id>)/$value

The window's lower bound (`state["since"]`, the PublicationDate of the last product
fetched without a gap, in the API's milliseconds) moves with each product fetched, and the
next run starts `overlap_s` before it: on a server that can publish a product with an
earlier PublicationDate than one already listed (its transaction committed later), that
product is still found. An auxip does not (shared/adapters/catalogue/publication_clock.py):
polling one, an overlap of 0 loses nothing. Products already fetched come round again in
the overlap, and in the millisecond `since` was truncated to, and are skipped by the poller
(seen_sources).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.core.s1time import format_odata, parse_iso
from shared.pipeline.routing.config import Basic, OAuth2, ODataSource
from shared.pipeline.routing.oauth import TokenClient, TokenError, token_client
from shared.pipeline.routing.sources.base import Item, SourceError

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
FIRST_LOOKBACK = timedelta(days=1)


def window_start(config: ODataSource, state: Mapping[str, Any], now: datetime) -> datetime:
    """The lower bound of this run's listing."""
    if state.get("since"):
        since = parse_iso(state["since"])
    elif config.start is not None:
        since = config.start if config.start.tzinfo else config.start.replace(tzinfo=UTC)
        return since  # the configured start is exact: nothing before it is wanted
    else:
        since = now - FIRST_LOOKBACK
    return since - timedelta(seconds=config.overlap_s)


class ODataFiles:
    def __init__(self, config: ODataSource) -> None:
        self.config = config
        self.root = config.url.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(config.timeout_s, connect=10.0),
                                 follow_redirects=True,
                                 headers={"User-Agent": "auxip-poll", "Accept": "application/json"})
        self.tokens: TokenClient | None = None
        self.basic: httpx.BasicAuth | None = None
        if isinstance(config.auth, OAuth2):
            self.tokens = token_client(config.auth)
        elif isinstance(config.auth, Basic):
            self.basic = httpx.BasicAuth(config.auth.username, config.auth.password)
        self._offline: set[str] = set()

    def pages(self, state: Mapping[str, Any]) -> Iterator[list[Item]]:
        c = self.config
        lower = window_start(c, state, datetime.now(UTC))
        expression = f"PublicationDate gt {format_odata(lower)}"
        if c.filter:
            expression += f" and ({c.filter})"
        skip = 0
        while True:
            body = self._json(f"{self.root}/Products", {
                "$filter": expression, "$orderby": "PublicationDate asc",
                "$top": str(c.page_size), "$skip": str(skip)})
            values = body.get("value")
            if not isinstance(values, list):
                raise SourceError(f"{self.root}/Products: no 'value' array in the answer")
            items = [item for item in map(self._item, values) if item is not None]
            yield [i for i in items if c.wants(i.product_name)]
            # A server may cap $top below what was asked: its nextLink says more exist.
            if not values or ("@odata.nextLink" not in body and len(values) < c.page_size):
                return
            skip += len(values)

    def _item(self, value: Mapping[str, Any]) -> Item | None:
        try:
            product_id = str(value["Id"])
            name = str(value["Name"])
            size = int(value["ContentLength"])
            published = parse_iso(str(value["PublicationDate"]))
        except (KeyError, TypeError, ValueError) as error:
            log.warning("%s: a product without Id/Name/ContentLength/PublicationDate (%s)",
                        self.root, error)
            return None
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            # The name becomes an inbox key: it must stay one file under the source's prefix.
            log.warning("%s: product %s has a name that is no file name: %r", self.root,
                        product_id, name)
            return None
        md5 = next((str(c.get("Value", "")).lower() for c in value.get("Checksum") or []
                    if isinstance(c, Mapping) and str(c.get("Algorithm", "")).upper() == "MD5"),
                   None)
        if value.get("Online") is False:
            self._offline.add(product_id)
        return Item(key=product_id, name=name, size=size, version=md5 or str(size), md5=md5,
                    published=published)

    @contextmanager
    def open(self, item: Item) -> Iterator[Iterator[bytes]]:
        if item.key in self._offline:
            raise SourceError(f"{item.name} is offline at {self.root}")
        url = f"{self.root}/Products({item.key})/$value"
        with self._stream(url) as response:
            yield response.iter_bytes(CHUNK)

    @contextmanager
    def _stream(self, url: str) -> Iterator[httpx.Response]:
        for attempt in (1, 2):
            try:
                with self.http.stream("GET", url, headers=self._headers(),
                                      auth=self.basic) as response:
                    if response.status_code == 401 and self.tokens and attempt == 1:
                        self.tokens.invalidate()
                        continue
                    _raise_for(response, url)
                    yield response
                    return
            except httpx.HTTPError as error:
                raise SourceError(f"{url}: {type(error).__name__}: {error}") from None

    def _json(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                response = self.http.get(url, params=params, headers=self._headers(),
                                         auth=self.basic)
            except httpx.HTTPError as error:
                raise SourceError(f"{url}: {type(error).__name__}: {error}") from None
            if response.status_code == 401 and self.tokens and attempt == 1:
                self.tokens.invalidate()
                continue
            _raise_for(response, url)
            try:
                body = response.json()
            except ValueError:
                raise SourceError(f"{url}: the answer is not JSON") from None
            if not isinstance(body, dict):
                raise SourceError(f"{url}: the answer is not a JSON object")
            return body
        raise AssertionError("unreachable")

    def _headers(self) -> dict[str, str]:
        if self.tokens is None:
            return {}
        try:
            return {"Authorization": self.tokens.authorization()}
        except TokenError as error:
            raise SourceError(str(error)) from None

    def remove(self, item: Item) -> None:
        raise SourceError("an OData source cannot delete its products")

    def close(self) -> None:
        self.http.close()


def _raise_for(response: httpx.Response, url: str) -> None:
    if response.status_code >= 300:
        try:
            detail = response.read()[:200].decode(errors="replace")
        except httpx.HTTPError:
            detail = ""
        raise SourceError(f"{url}: HTTP {response.status_code} {detail}".rstrip())
