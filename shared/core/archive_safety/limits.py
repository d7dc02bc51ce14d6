"""What every archive format shares: the reasons and limits, the member record, and the
checks on names (traversal, duplicates, file/folder clashes) and sizes (bombs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.core.attacks import Attack

ARCHIVE_UNSAFE = "archive_unsafe"
ARCHIVE_CORRUPT = "archive_corrupt"

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

ZIP_KINDS = frozenset({"zip"})
TAR_KINDS = frozenset({"tar", "tgz", "tar.gz"})


class UnsafeArchive(Exception):
    """`attack`: what the archive was built to do, when the refusal says it (a zip slip,
    a bomb); None for an archive refused for what it is (encrypted, a device...)."""

    def __init__(self, reason: str, detail: str, attack: Attack | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attack = attack


def unsafe(detail: str, attack: Attack | None = None) -> UnsafeArchive:
    return UnsafeArchive(ARCHIVE_UNSAFE, detail, attack)


def corrupt(detail: str) -> UnsafeArchive:
    return UnsafeArchive(ARCHIVE_CORRUPT, detail)


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_member_bytes: int = 4 * GiB
    max_total_bytes: int = 8 * GiB
    # Uncompressed / compressed. Real S1 aux XML compresses 3-45x; zeros deflate ~1000x.
    max_ratio: float = 200.0
    # Below this many uncompressed bytes a ratio is not judged: a small member cannot
    # exhaust anything, and tiny repetitive files legitimately compress very well.
    ratio_floor_bytes: int = 1 * MiB


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Member:
    """One archive entry. `name` is normalised: '/'-separated, no '.' or empty parts, no
    trailing '/' for folders. `compressed_size` is None inside a tar compressed as a whole
    (.tgz), where members have no compressed size of their own."""

    name: str
    size: int
    compressed_size: int | None
    is_dir: bool


# --- names ------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
# C0 controls and DEL; one regex search rather than a test per character (names are read
# once per member at each look, a few times per file).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise(raw: str) -> str:
    """The member's name as a relative '/' path, or UnsafeArchive if it could escape."""
    if raw == "":
        raise unsafe("a member has an empty name")
    if _CONTROL.search(raw):
        raise unsafe(f"member {raw!r}: control character in name")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise unsafe(f"member {raw!r}: name is not valid UTF-8") from None
    # Backslash is a separator for Windows extractors, so '..\\x' is traversal there.
    if "\\" in raw:
        raise unsafe(f"member {raw!r}: backslash in name (a Windows path separator)",
                     Attack.ZIP_SLIP)
    if raw.startswith("/") or _DRIVE.match(raw):
        raise unsafe(f"member {raw!r}: absolute path", Attack.ZIP_SLIP)
    parts = raw.split("/")
    if ".." in parts:
        raise unsafe(f"member {raw!r}: path traversal ('..' component)", Attack.ZIP_SLIP)
    return "/".join(p for p in parts if p not in ("", "."))


class NameBook:
    """Refuses duplicates, and a name used both as a file and as a folder (after
    normalisation 'a/b' and './a//b' are the same file for any extractor)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.files: set[str] = set()
        self.parents: dict[str, str] = {}

    def add(self, name: str, raw: str, is_dir: bool) -> None:
        if name in self.seen:
            raise unsafe(f"member {raw!r}: duplicate of {self.seen[name]!r}")
        if not is_dir and name in self.parents:
            raise unsafe(
                f"member {raw!r}: is a file and also the folder of {self.parents[name]!r}"
            )
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.files:
                raise unsafe(f"member {raw!r}: its folder {parent!r} is a file")
            self.parents.setdefault(parent, raw)
        self.seen[name] = raw
        if not is_dir:
            self.files.add(name)


def check_sizes(raw: str, size: int, total: int, limits: ArchiveLimits) -> None:
    if size > limits.max_member_bytes:
        raise unsafe(
            f"member {raw!r}: {size} bytes uncompressed, over the limit of "
            f"{limits.max_member_bytes}", Attack.BOMB
        )
    if total > limits.max_total_bytes:
        raise unsafe(
            f"members up to {raw!r} total {total} bytes uncompressed, over the limit of "
            f"{limits.max_total_bytes}", Attack.BOMB
        )


def ratio_over(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    return size > limits.ratio_floor_bytes and size > limits.max_ratio * max(compressed, 1)


def check_count(count: int, limits: ArchiveLimits) -> None:
    if count > limits.max_members:
        raise unsafe(f"more than {limits.max_members} members", Attack.BOMB)

