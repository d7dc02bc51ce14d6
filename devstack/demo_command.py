"""`auxip demo`: the demo set through the running local stack, and what got published."""

from __future__ import annotations

import typer
from rich.console import Console

from devstack import demo
from devstack.settings import stack_settings
from shared.core.s1time import OPEN_END
from shared.prip.auth import AuthSettings

console = Console()


def run(timeout: float = typer.Option(120.0, help="seconds to wait for publication")) -> None:
    """Put the generated demo products into the inbox and show what got published."""
    settings = stack_settings()
    console.print(f"Uploading the demo set into s3://{settings.inbox_bucket} "
                  f"({settings.s3_endpoint}) ...")
    with console.status("waiting for the pipeline") as status:
        report = demo.run(settings, timeout_s=timeout,
                          progress=lambda done, total: status.update(
                              f"waiting for the pipeline: {done}/{total} products"))
    console.print(f"Published in {report.seconds:.1f} s:", highlight=False)
    for row in report.published:
        console.print(f"  {row['name']}\n      {row['product_type']:<11} unit "
                      f"{row['platform_serial'] or 'all':<4} valid {_short(row['content_start'])}"
                      f" .. {_short(row['content_end'])}  {row['content_length']} bytes",
                      highlight=False, soft_wrap=True)
    for row in report.rejected:
        console.print(f"[yellow]rejected[/yellow] {row['name']}: {row['reason']} ({row['detail']})")
    token_url = settings.token_url
    console.print(
        "\nQuery it (OData, PRIP/AUXIP style):\n"
        f"  TOKEN=$(curl -s -d grant_type=password -d username=alice -d password=alice-pw "
        f"-d client_id=auxip {token_url} | python3 -c 'import json,sys;print(json.load(sys.stdin)[\"access_token\"])')\n"
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" "
        f"'{settings.prip_url}/Products?$filter=contains(Name,%27AUX_RESORB%27)&$orderby=ContentDate/Start%20desc&$top=5'\n"
        f"Environment for your shell: eval \"$(.venv/bin/auxip env)\"\n"
        f"{_anonymous_note()}\n"
        "Pointing CDSE-style, Keycloak-style, curl and Python clients at auxip: docs/clients.md",
        highlight=False, soft_wrap=True)
    if report.missing:
        console.print(f"[red]not published within {timeout:.0f} s:[/red] {', '.join(report.missing)}")
        raise typer.Exit(1)


def _anonymous_note() -> str:
    if AuthSettings().anonymous_catalogue:
        return ("Anonymous catalogue: on (AUXIP_ANONYMOUS_CATALOGUE): clients written for the "
                "Copernicus Data Space (CDSE) search without a token; downloads need one.")
    return ("Anonymous catalogue: off. Clients written for the Copernicus Data Space (CDSE) "
            "search without a token: make down && AUXIP_ANONYMOUS_CATALOGUE=true make run "
            "(downloads still need one).")


def _short(when) -> str:  # type: ignore[no-untyped-def]
    return "open" if when >= OPEN_END else when.strftime("%Y-%m-%d %H:%M:%S")
