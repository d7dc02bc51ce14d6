"""The secret scan of `make audit`: hard-coded secrets planted in a copy of the tree fail
it and are named; reviewed findings stay reviewed when their lines move; a finding the
baseline marks as a real secret fails. (The secrets are made here at run time, so that
this file itself holds none.)"""

from __future__ import annotations

import json
import re
import secrets
import string
from pathlib import Path

from tests.audit.conftest import MakeAudit, git


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def test_make_audit_fails_on_planted_secrets_and_names_them(tree: Path, make_audit: MakeAudit):
    key_id = "AKIA" + _random(string.ascii_uppercase + string.digits, 16)
    (tree / "shared" / "archive_credentials.py").write_text(
        '"""Where the archive is."""\n\nARCHIVE_KEY_ID = "' + key_id + '"\n')
    config = tree / "config" / "routing.yaml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join(
        # Eight letters only: a keyword finding, never also a high-entropy string (24 of
        # all 52 letters drawn at random were, now and then: 4 findings instead of 3).
        [*lines, "# left by mistake", "password: " + _random(string.ascii_letters[:8], 24)])
        + "\n")
    # A reviewed finding moved down by two lines is still the reviewed one...
    moved = tree / "tests" / "pipeline" / "routing" / "servers.py"
    moved.write_text("# moved\n# down\n" + moved.read_text())
    # ...and one the baseline holds as a real secret fails (one scan serves both: it is slow).
    baseline = tree / "audit" / "secrets.baseline"
    data = json.loads(baseline.read_text())
    real = data["results"]["tests/pipeline/routing/conftest.py"][0]
    real["is_secret"] = True
    baseline.write_text(json.dumps(data, indent=2) + "\n")
    git(tree, "add", "--all")

    done = make_audit("secrets", tree=tree)

    assert done.returncode != 0
    assert "audit: secrets: failed" in done.stdout
    assert "shared/archive_credentials.py:3: AWS Access Key (new)" in done.stdout
    assert f"config/routing.yaml:{len(lines) + 2}: Secret Keyword (new)" in done.stdout
    # Named at the line it is on now (the baseline's line number may lag behind an edit).
    assert re.search(r"tests/pipeline/routing/conftest\.py:\d+: " + re.escape(real["type"])
                     + r" \(marked as a real secret\)", done.stdout), done.stdout
    assert "servers.py" not in done.stdout
    assert "3 unreviewed findings" in done.stdout
