"""What every `auxip` command that reads the catalogue starts with: the settings and a
catalogue connection that fail with one clear line instead of a traceback.

The settings come from the environment (AUXIP_*). A package that installs commands of its
own (see main.py: the local stack's, in a development checkout) may hand in another
source of settings and another way to find a function's URL, with `use()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import typer
from rich.console import Console

from shared.adapters.settings import Settings, SettingsError, load_settings

_console = Console(stderr=True)


def _function_url(s: Settings, name: str) -> str | None:
    """A Knative Service's URL from AUXIP_FUNCTION_URL_TEMPLATE (None: no template)."""
    if not s.function_url_template:
        return None
    return s.function_url_template.format(name=name)


@dataclass
class _Sources:
    settings: Callable[[], Settings] = load_settings
    function_url: Callable[[Settings, str], str | None] = _function_url


_sources = _Sources()


def use(settings: Callable[[], Settings] | None = None,
        function_url: Callable[[Settings, str], str | None] | None = None) -> None:
    """Replace where the commands take their settings and function URLs from."""
    if settings is not None:
        _sources.settings = settings
    if function_url is not None:
        _sources.function_url = function_url


def settings() -> Settings:
    try:
        return _sources.settings()
    except SettingsError as error:
        _console.print(f"[red]auxip is not configured:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None


def function_url(s: Settings, name: str) -> str | None:
    """Where a function of this deployment answers, by its Service name; None if unknown."""
    return _sources.function_url(s, name)


def connect(s: Settings | None = None) -> psycopg.Connection:
    url = (s or settings()).database_url
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _console.print(f"[red]cannot connect to the catalogue:[/red] {error}".strip())
        raise typer.Exit(1) from None
