"""The licence check of `make audit`: every package the image ships is allowed, or was
reviewed and recorded; a disallowed or unknown licence planted into the environment
fails it and is named; the third-party report holds every shipped package with its
licence text. The planted packages live in an environment made here: the runtime's
packages (through a .pth file) plus one distribution with the licence under test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.licences import REPORT, Policy, named
from tests.audit.conftest import MakeAudit

VENDORED = ("import importlib.metadata as m\n"
            "for d in m.distributions():\n"
            "    for f in d.files or ():\n"
            "        if f.parts[0].endswith('.libs'): print(f.as_posix())")


def _site_packages(python: Path) -> Path:
    return Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())


def planted(tmp_path: Path, runtime_python: Path, name: str, licence_lines: list[str]) -> Path:
    """The python of an environment holding the runtime's packages and `name` 1.0, whose
    metadata says `licence_lines` (none: it names no licence)."""
    venv = tmp_path / "planted"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = _site_packages(venv / "bin" / "python")
    (site / "runtime.pth").write_text(f"{_site_packages(runtime_python)}\n")
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("\n".join(
        ["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0", *licence_lines]) + "\n")
    return venv / "bin" / "python"


def test_make_audit_fails_on_a_planted_disallowed_licence(
        tmp_path: Path, runtime_python: Path, make_audit: MakeAudit):
    python = planted(tmp_path, runtime_python, "copyleft-helper",
                     ["License-Expression: GPL-3.0-only"])

    done = make_audit("--runtime-python", python, "licences")

    assert done.returncode != 0
    assert "audit: licences: failed" in done.stdout
    assert "copyleft-helper 1.0 (GPL-3.0-only): 'GPL-3.0-only' not in the allow-list" \
        in done.stdout
    assert "1 of " in done.stdout  # only the planted one: the runtime's packages all pass
    report = (tmp_path / "out" / REPORT).read_text()
    assert "copyleft-helper 1.0" in report  # the report still shows what was found


def test_an_unknown_licence_is_refused_until_reviewed_and_recorded(
        tmp_path: Path, runtime_python: Path, make_audit: MakeAudit, tree: Path):
    python = planted(tmp_path, runtime_python, "silent-helper", [])

    done = make_audit("--runtime-python", python, "licences")
    assert done.returncode != 0
    assert "silent-helper 1.0 (UNKNOWN): its metadata names no licence" in done.stdout

    # Reviewed (its repository says BSD-3-Clause, say) and recorded: it may ship.
    policy = tree / "audit" / "licences.toml"
    policy.write_text(policy.read_text() + '\n[reviewed.silent-helper]\nlicence = "UNKNOWN"\n'
                      'reason = "No licence in its metadata; its repository\'s LICENSE file '
                      'is BSD-3-Clause (checked for 1.0)."\n')
    done = make_audit("--runtime-python", python, "licences", tree=tree)
    assert done.returncode == 0
    assert "audit: licences: passed" in done.stdout
    assert "reviewed" in (tmp_path / "out" / REPORT).read_text().split("silent-helper")[1][:80]


def test_a_reviewed_package_whose_licence_changed_is_refused_again(
        tree: Path, runtime_python: Path, make_audit: MakeAudit):
    policy = tree / "audit" / "licences.toml"
    text = policy.read_text()
    assert text.count('licence = "LGPL-2.1"') == 1  # paramiko's review
    policy.write_text(text.replace('licence = "LGPL-2.1"', 'licence = "LGPL-2.0-only"'))

    done = make_audit("--runtime-python", runtime_python, "licences", tree=tree)

    assert done.returncode != 0
    assert "paramiko" in done.stdout
    assert "reviewed when it said 'LGPL-2.0-only'; it now says 'LGPL-2.1': review it again" \
        in done.stdout


def test_what_the_image_ships_passes_and_the_report_holds_it_all(
        tmp_path: Path, runtime_python: Path, make_audit: MakeAudit):
    done = make_audit("--runtime-python", runtime_python, "licences")
    assert done.returncode == 0, done.stdout

    shipped = json.loads(subprocess.run(
        [str(runtime_python), "-m", "pip", "list", "--format", "json",
         "--disable-pip-version-check"], check=True, capture_output=True, text=True).stdout)
    names = {p["name"].lower() for p in shipped}
    assert {"boto3", "psycopg", "pydantic", "pip"} <= names and "pytest" not in names
    report = (tmp_path / "out" / REPORT).read_text()
    for package in shipped:  # each shipped package, at its version, and no dev tool
        assert f"\n{package['name']} {package['version']}\nLicence: " in report, package
    assert "pytest" not in report.lower().split("components bundled")[0]
    boto3 = report.split("\nboto3 ")[1].split("-" * 78)[0]
    assert "Apache License" in boto3 and "NOTICE:" in boto3
    assert "Review: The PostgreSQL driver." in report.split("\npsycopg ")[1]
    # Crates and C libraries bundled in wheels: per their own SBOMs, and vendored .libs/.
    bundled = report.split("Components bundled inside these packages")[1]
    assert "\ncryptography:\n" in bundled and "openssl" in bundled.lower()
    vendored = subprocess.run([str(runtime_python), "-c", VENDORED], check=True,
                              capture_output=True, text=True).stdout.split()
    assert any("libpq" in library for library in vendored)  # psycopg-binary's
    for library in vendored:
        assert f"shared library {library}\n" in bundled


@pytest.mark.parametrize("licence, names", [
    ("Apache-2.0", ["Apache-2.0"]),
    ("(MIT OR Apache-2.0) AND Unicode-3.0", ["MIT", "Apache-2.0", "Unicode-3.0"]),
    ("Apache Software License; BSD License", ["Apache Software License", "BSD License"]),
    ("ISC License (ISCL)", ["ISC License (ISCL)"]),
    ("Apache-2.0 WITH LLVM-exception", ["Apache-2.0", "LLVM-exception"]),
    ("UNKNOWN", ["UNKNOWN"]),
])
def test_the_licences_a_metadata_string_names(licence: str, names: list[str]):
    assert named(licence) == names


def test_a_policy_cannot_allow_unknown_nor_record_a_review_without_reason(tmp_path: Path):
    path = tmp_path / "licences.toml"
    path.write_text('allowed = ["MIT", "UNKNOWN"]\n')
    with pytest.raises(ValueError, match="UNKNOWN cannot be allowed"):
        Policy.load(path)
    path.write_text('allowed = ["MIT"]\n[reviewed.x]\nlicence = "GPL-3.0-only"\nreason = " "\n')
    with pytest.raises(ValueError, match="the review of x gives no reason"):
        Policy.load(path)
