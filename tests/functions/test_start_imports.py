"""No function loads httpx's command-line client at start: httpx's package imports it
(rich, pygments) whenever they are installed, as rich is for auxip's CLI, and it cost every
function that sends an event +3.2 MB and ~35 ms of cold start (shared/__init__.py).

Each function is loaded by functions-framework in a fresh interpreter with the stack's
environment, as the stack starts it; the interpreter then says what it holds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from functions import FUNCTIONS, folder_of

REPO = Path(__file__).parents[2]
HTTP = ("inbox_adapter", "prip")
CLI_ONLY = {"rich", "pygments"}

_PROBE = textwrap.dedent("""
    import json, sys
    from functions_framework import create_app

    folder, signature = sys.argv[1], sys.argv[2]
    create_app("handle", f"functions/{folder}/main.py", signature)
    print(json.dumps(sorted({"httpx", "rich", "pygments"} & set(sys.modules))))
""")


def _loaded(*argv: str) -> list[str]:
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("folder", [folder_of(name) for name in FUNCTIONS])
def test_no_function_loads_httpx_command_line_client(folder: str) -> None:
    loaded = _loaded("-c", _PROBE, folder, "http" if folder in HTTP else "cloudevent")
    assert not CLI_ONLY & set(loaded), f"{folder} imported {loaded}"


def test_httpx_imported_after_shared_still_works_without_it() -> None:
    # rich is installed here (auxip's CLI): without shared's guard this very import would
    # bring it in, so the test fails if the guard goes.
    code = ("import json, sys, shared, httpx;"
            " print(json.dumps(sorted({'rich', 'pygments'} & set(sys.modules))"
            " + [callable(httpx.Client), callable(httpx.main)]))")
    assert _loaded("-c", code) == [True, True]


@pytest.mark.usefixtures("function_env")
def test_verify_loads_packaging_only_to_repair() -> None:
    # shared.pipeline.packaging (its archive readers and writers, the outbox, httpx) is
    # ~8% of verify's import; repair imports it for a damaged product only.
    code = ("import json, sys; from functions_framework import create_app;"
            " create_app('handle', 'functions/verify/main.py', 'cloudevent');"
            " print(json.dumps(['shared.pipeline.packaging' in sys.modules]))")
    assert _loaded("-c", code) == [False]
