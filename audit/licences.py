"""The licence of every package the image ships, judged against the allow-list kept in
`licences.toml`, and the third-party licence report (licence texts and notices) written
from the same data. pip-licenses reads each package's metadata (License-Expression, trove
classifiers, License) and its licence and notice files."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from audit.context import FAILED, PASSED, Context, Outcome

POLICY = Path(__file__).with_name("licences.toml")
REPORT = "THIRD_PARTY_LICENSES.txt"
RESOLVED = "licences.json"
UNKNOWN = "UNKNOWN"  # what pip-licenses says when a package names no licence
# "A OR B" is judged as "A AND B" (every licence named must be allowed): the stricter
# reading, and no SPDX parser is needed for it.
_SEPARATORS = re.compile(r"\s+(?:AND|OR|WITH)\s+|\s*;\s*")
# What a wheel says it bundles: SBOM files under .dist-info/sboms/ (PEP 770), and the
# shared libraries auditwheel vendored into <package>.libs/ (whether its SBOM names them
# or not).
_BUNDLED = (
    "import importlib.metadata as m, json\n"
    "print(json.dumps({d.metadata['Name']: {\n"
    "    'sboms': [str(d.locate_file(f)) for f in d.files or ()\n"
    "              if len(f.parts) > 1 and f.parts[-2] == 'sboms'],\n"
    "    'libraries': [f.as_posix() for f in d.files or () if f.parts[0].endswith('.libs')],\n"
    "} for d in m.distributions()}))"
)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str
    url: str
    text: str
    notice: str


@dataclass(frozen=True)
class Review:
    licences: tuple[str, ...]  # what the package said when it was reviewed (its spellings)
    reason: str


@dataclass(frozen=True)
class Policy:
    allowed: frozenset[str]
    reviewed: dict[str, Review]  # by canonical package name

    @classmethod
    def load(cls, path: Path = POLICY) -> Policy:
        with path.open("rb") as file:
            data = tomllib.load(file)
        allowed = frozenset(data["allowed"])
        if UNKNOWN in allowed:
            raise ValueError(f"{path}: {UNKNOWN} cannot be allowed: review such packages")
        reviewed = {}
        for name, entry in data.get("reviewed", {}).items():
            if not entry.get("reason", "").strip():
                raise ValueError(f"{path}: the review of {name} gives no reason")
            licences = entry["licence"]
            licences = (licences,) if isinstance(licences, str) else tuple(licences)
            reviewed[canonical(name)] = Review(licences, " ".join(entry["reason"].split()))
        return cls(allowed, reviewed)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def named(licence: str) -> list[str]:
    """The licences a metadata string names: `(MIT OR Apache-2.0) AND BSD-3-Clause` names
    three; a classifier's own parentheses (`ISC License (ISCL)`) stay."""
    names = []
    for part in _SEPARATORS.split(licence):
        part = part.strip()
        while part.startswith("(") and part.count("(") > part.count(")"):
            part = part[1:].strip()
        while part.endswith(")") and part.count(")") > part.count("("):
            part = part[:-1].strip()
        if part:
            names.append(part)
    return names


def refusal(package: Package, policy: Policy) -> str | None:
    """Why `package` may not ship, or None."""
    review = policy.reviewed.get(canonical(package.name))
    if review is not None:
        if package.licence in review.licences:
            return None
        said = " or ".join(repr(licence) for licence in review.licences)
        return f"reviewed when it said {said}; it now says {package.licence!r}: review it again"
    names = named(package.licence)
    if not names or names == [UNKNOWN]:
        return "its metadata names no licence: find it, review it, record it as a review"
    outside = [name for name in names if name not in policy.allowed]
    if outside:
        return f"{', '.join(repr(name) for name in outside)} not in the allow-list"
    return None


def installed(context: Context) -> list[Package]:
    done = context.run(
        context.tool("pip-licenses"), "--python", context.runtime_python, "--from=mixed",
        "--with-system", "--with-urls", "--with-license-file", "--no-license-path",
        "--with-notice-file", "--format=json", "--ignore-packages", "auxip",
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip-licenses failed: {done.stderr.strip()}")
    return [Package(p["Name"], p["Version"], p["License"], p["URL"], p["LicenseText"],
                    p["NoticeText"]) for p in json.loads(done.stdout)]


def bundled(context: Context) -> dict[str, list[str]]:
    """Per package, what its wheel bundles besides Python code (C libraries, Rust crates)."""
    done = context.run(context.runtime_python, "-c", _BUNDLED)
    if done.returncode != 0:
        raise RuntimeError(f"listing what wheels bundle failed: {done.stderr.strip()}")
    found: dict[str, list[str]] = {}
    for package, files in sorted(json.loads(done.stdout).items(), key=lambda kv: kv[0].lower()):
        components = set()
        for file in files["sboms"]:
            try:
                sbom = json.loads(Path(file).read_text())
            except (OSError, ValueError):
                components.add(f"(not read: {Path(file).name} is not a CycloneDX JSON file)")
                continue
            for component in sbom.get("components", []):
                if canonical(component.get("name", "")) == canonical(package):  # the wheel
                    continue
                components.add(f"{component.get('name')} {component.get('version', '')}: "
                               f"{_component_licence(component)}")
        lines = sorted(components)
        lines += [f"shared library {library}" for library in sorted(files["libraries"])]
        if lines:
            found[package] = lines
    return found


def _component_licence(component: dict) -> str:
    licences = []
    for entry in component.get("licenses", []):
        if "expression" in entry:
            licences.append(entry["expression"])
        else:
            licence = entry.get("license", {})
            licences.append(licence.get("id") or licence.get("name") or "?")
    return " AND ".join(licences) or "not stated in the wheel's SBOM"


def write_report(path: Path, packages: list[Package], policy: Policy,
                 bundles: dict[str, list[str]]) -> None:
    rule = "-" * 78
    width = max(len(p.name) for p in packages)
    version_width = max(len(p.version) for p in packages)
    lines = [
        "Third-party software in the auxip image",
        "=======================================",
        "",
        "Generated by `python -m audit licences` (make audit; the image build) from the",
        "metadata, licence and notice files of the installed packages: do not edit.",
        f"{len(packages)} packages; each licence judged against audit/licences.toml.",
        "",
    ]
    for p in packages:
        review = " (reviewed)" if canonical(p.name) in policy.reviewed else ""
        lines.append(f"  {p.name:<{width}}  {p.version:<{version_width}}  {p.licence}{review}")
    for p in packages:
        lines += ["", rule, f"{p.name} {p.version}", f"Licence: {p.licence}", f"Home: {p.url}"]
        review = policy.reviewed.get(canonical(p.name))
        if review is not None:
            lines.append(f"Review: {review.reason}")
        lines += ["", p.text.strip() if p.text != UNKNOWN else "(no licence file in the package)"]
        if p.notice != UNKNOWN:
            lines += ["", "NOTICE:", p.notice.strip()]
    if bundles:
        lines += ["", rule, "Components bundled inside these packages: as the wheels' own SBOMs",
                  "(.dist-info/sboms/) list them, and the shared libraries vendored beside",
                  "them (<package>.libs/). Their licence texts are not in the packages'",
                  "metadata; each is named here so that it can be looked up:"]
        for package, components in bundles.items():
            lines += ["", f"{package}:"] + [f"  {component}" for component in components]
    path.write_text("\n".join(lines) + "\n")


def check(context: Context) -> Outcome:
    policy = Policy.load()
    packages = sorted(installed(context), key=lambda p: p.name.lower())
    (context.out / RESOLVED).write_text(json.dumps(
        [{"name": p.name, "version": p.version, "licence": p.licence} for p in packages],
        indent=1) + "\n")
    report = context.out / REPORT
    write_report(report, packages, policy, bundled(context))
    refused = [f"{p.name} {p.version} ({p.licence}): {why}"
               for p in packages if (why := refusal(p, policy)) is not None]
    names = {canonical(p.name) for p in packages}
    unused = sorted(set(policy.reviewed) - names)
    notes = [f"reviewed but not installed (drop it from {POLICY.name}?): {', '.join(unused)}"
             ] if unused else []
    if refused:
        return Outcome("licences", FAILED, f"{len(refused)} of {len(packages)} packages refused: "
                       f"review each and record it in audit/{POLICY.name}", refused + notes)
    by_review = sum(1 for name in names if name in policy.reviewed)
    return Outcome("licences", PASSED, f"{len(packages)} packages allowed ({by_review} by review); "
                   f"report: {report}", notes)
