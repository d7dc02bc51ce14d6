import io
import re
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.archive_safety import (
    ARCHIVE_CORRUPT,
    ARCHIVE_UNSAFE,
    ArchiveLimits,
    Member,
    UnsafeArchive,
    inspect_archive,
    inspect_tar,
    inspect_zip,
    iter_member_chunks,
    iter_members,
    safe_root,
)
from shared.core.attacks import Attack

from . import hostile
from .hostile import DEFAULT_SAFE


def refused(path: Path, kind: str, limits: ArchiveLimits | None = None) -> UnsafeArchive:
    with pytest.raises(UnsafeArchive) as info:
        inspect_archive(path, kind, limits or ArchiveLimits())
    return info.value


def read_all(path: Path, kind: str, name: str) -> bytes:
    return b"".join(iter_member_chunks(path, kind, name, ArchiveLimits(), chunk_size=4096))


# --- clean archives -------------------------------------------------------------------------


def expected_members(files: dict[str, bytes]) -> set[tuple[str, int, bool]]:
    dirs = {DEFAULT_SAFE, f"{DEFAULT_SAFE}/data", f"{DEFAULT_SAFE}/support"}
    return {(d, 0, True) for d in dirs} | {
        (f"{DEFAULT_SAFE}/{rel}", len(data), False) for rel, data in files.items()
    }


def test_clean_safe_zip_is_accepted_with_its_members(tmp_path: Path) -> None:
    files = hostile.sample_safe_files()
    path = hostile.safe_zip(tmp_path / f"{DEFAULT_SAFE}.zip", files)
    members = inspect_zip(path, ArchiveLimits())
    assert {(m.name, m.size, m.is_dir) for m in members} == expected_members(files)
    assert all(m.compressed_size is not None and m.compressed_size <= m.size + 64 for m in members)
    assert safe_root(members) == DEFAULT_SAFE
    name = f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml"
    assert read_all(path, "zip", name) == files["data/s1a-aux-cal.xml"]


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", ""])
def test_clean_safe_tar_is_accepted_with_its_members(tmp_path: Path, compression: str) -> None:
    files = hostile.sample_safe_files()
    path = hostile.safe_tar(tmp_path / "p.tgz", files, compression=compression)
    members = inspect_tar(path, ArchiveLimits())
    assert {(m.name, m.size, m.is_dir) for m in members} == expected_members(files)
    # Members of a tar compressed as a whole have no compressed size of their own.
    assert all((m.compressed_size is None) == bool(compression) for m in members)
    assert safe_root(members) == DEFAULT_SAFE
    name = f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml"
    assert read_all(path, "tgz", name) == files["data/s1a-aux-cal.xml"]


def test_dot_slash_names_are_normalised(tmp_path: Path) -> None:
    path = hostile.safe_tar(tmp_path / "p.tgz", prefix="./")
    members = inspect_archive(path, "tgz")
    assert f"{DEFAULT_SAFE}/manifest.safe" in {m.name for m in members}
    assert safe_root(members) == DEFAULT_SAFE
    assert read_all(path, "tgz", f"{DEFAULT_SAFE}/manifest.safe").startswith(b"<?xml")


def test_zip_without_folder_entries(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip", folder_entries=False)
    members = inspect_archive(path, "zip")
    assert not any(m.is_dir for m in members)
    assert safe_root(members) == DEFAULT_SAFE


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_iter_members_streams_every_file_once(tmp_path: Path, kind: str) -> None:
    files = hostile.sample_safe_files()
    if kind == "zip":
        path = hostile.safe_zip(tmp_path / "p.zip", files)
    else:
        path = hostile.safe_tar(tmp_path / "p.tgz", files)
    got = {m.name: b"".join(chunks) for m, chunks in iter_members(path, kind, chunk_size=1000)}
    assert got == {f"{DEFAULT_SAFE}/{rel}": data for rel, data in files.items()}


def test_missing_member_is_a_key_error(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip")
    with pytest.raises(KeyError):
        read_all(path, "zip", f"{DEFAULT_SAFE}/nope.xml")
    with pytest.raises(KeyError):  # a folder has no content
        read_all(path, "zip", f"{DEFAULT_SAFE}/data")


def test_unknown_kind_is_a_programming_error(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip")
    with pytest.raises(ValueError):
        inspect_archive(path, "rar")


# --- hostile archives -----------------------------------------------------------------------

HOSTILE = [
    # builder, kwargs, kind, reason, words the detail must contain
    (hostile.zip_slip, {}, "zip", ARCHIVE_UNSAFE, ["../../../etc/cron.d/auxip", "traversal"]),
    (hostile.zip_absolute, {}, "zip", ARCHIVE_UNSAFE, ["/etc/cron.d/auxip", "absolute"]),
    (hostile.zip_absolute, {"name": "C:/Windows/evil.dll"}, "zip", ARCHIVE_UNSAFE, ["absolute"]),
    (hostile.zip_absolute, {"name": "C:\\Windows\\evil.dll"}, "zip", ARCHIVE_UNSAFE, ["backslash"]),
    (hostile.zip_slip, {"name": "X.SAFE\\..\\..\\evil.bat"}, "zip", ARCHIVE_UNSAFE, ["backslash"]),
    (hostile.zip_nul_name, {}, "zip", ARCHIVE_UNSAFE, ["x.xml\\x00.exe", "control character"]),
    (hostile.tar_slip, {}, "tgz", ARCHIVE_UNSAFE, ["../evil.sh", "traversal"]),
    (hostile.tar_slip, {"name": "/etc/passwd"}, "tgz", ARCHIVE_UNSAFE, ["absolute"]),
    (hostile.zip_symlink, {}, "zip", ARCHIVE_UNSAFE, ["data/link.xml", "symbolic link"]),
    (hostile.zip_device, {}, "zip", ARCHIVE_UNSAFE, ["data/dev.xml", "device"]),
    (
        hostile.tar_symlink,
        {},
        "tgz",
        ARCHIVE_UNSAFE,
        ["data/link.xml", "symbolic link", "/etc/passwd"],
    ),
    (
        hostile.tar_hardlink,
        {},
        "tgz",
        ARCHIVE_UNSAFE,
        ["data/link.xml", "hard link", "/etc/shadow"],
    ),
    (hostile.tar_device, {}, "tgz", ARCHIVE_UNSAFE, ["data/dev", "device"]),
    (hostile.tar_device, {"kind": tarfile.FIFOTYPE}, "tgz", ARCHIVE_UNSAFE, ["fifo"]),
    (hostile.tar_device, {"kind": tarfile.BLKTYPE}, "tgz", ARCHIVE_UNSAFE, ["device"]),
    (hostile.zip_duplicate, {}, "zip", ARCHIVE_UNSAFE, ["s1a-aux-cal.xml", "duplicate"]),
    (hostile.tar_duplicate, {}, "tgz", ARCHIVE_UNSAFE, ["s1a-aux-cal.xml", "duplicate"]),
    (hostile.zip_file_and_folder, {}, "zip", ARCHIVE_UNSAFE, ["data", "is a file"]),
    (hostile.zip_bomb, {}, "zip", ARCHIVE_UNSAFE, ["s1a-aux-cal.xml", "compression ratio"]),
    (hostile.tar_bomb, {}, "tgz", ARCHIVE_UNSAFE, ["s1a-aux-cal.xml", "times its compressed"]),
    (hostile.zip_encrypted, {}, "zip", ARCHIVE_UNSAFE, ["s1a-aux-cal.xml", "encrypted"]),
    (hostile.zip_overlapping, {}, "zip", ARCHIVE_UNSAFE, ["data/b.xml", "overlaps", "data/a.xml"]),
    (hostile.zip_with_prefix, {}, "zip", ARCHIVE_UNSAFE, ["512 bytes before the first member"]),
    (hostile.tar_trailing_data, {}, "tgz", ARCHIVE_UNSAFE, ["after the end-of-archive marker"]),
    (hostile.truncated_zip, {}, "zip", ARCHIVE_CORRUPT, ["zip"]),
    (hostile.truncated_tgz, {}, "tgz", ARCHIVE_CORRUPT, []),
    (hostile.tar_without_end, {}, "tar", ARCHIVE_CORRUPT, ["manifest.safe", "end-of-archive"]),
    (hostile.tar_garbled_header, {}, "tar", ARCHIVE_CORRUPT, ["unreadable header"]),
    (hostile.not_an_archive, {}, "zip", ARCHIVE_CORRUPT, ["not a readable zip"]),
    (hostile.not_an_archive, {}, "tgz", ARCHIVE_CORRUPT, ["not a readable tar"]),
]


@pytest.mark.parametrize(
    ("builder", "kwargs", "kind", "reason", "words"),
    HOSTILE,
    ids=[f"{b.__name__}-{kind}-{'-'.join(map(str, kw.values()))}" for b, kw, kind, *_ in HOSTILE],
)
def test_hostile_archive_is_refused(
    tmp_path: Path, builder, kwargs: dict, kind: str, reason: str, words: list[str]
) -> None:
    path = builder(tmp_path / f"hostile.{kind}", **kwargs)
    started = time.monotonic()
    error = refused(path, kind)
    assert error.reason == reason, error.detail
    for word in words:
        assert word in error.detail
    assert time.monotonic() - started < 5  # refusing must not mean decompressing everything


ATTACKS = [
    # builder, kwargs, kind, what the refusal says the archive was built to do
    (hostile.zip_slip, {}, "zip", Attack.ZIP_SLIP),
    (hostile.zip_absolute, {}, "zip", Attack.ZIP_SLIP),
    (hostile.zip_absolute, {"name": "C:\\Windows\\evil.dll"}, "zip", Attack.ZIP_SLIP),
    (hostile.tar_slip, {}, "tgz", Attack.ZIP_SLIP),
    (hostile.zip_symlink, {}, "zip", Attack.ZIP_SLIP),
    (hostile.tar_symlink, {}, "tgz", Attack.ZIP_SLIP),
    (hostile.tar_hardlink, {}, "tgz", Attack.ZIP_SLIP),
    (hostile.zip_bomb, {}, "zip", Attack.BOMB),
    (hostile.tar_bomb, {}, "tgz", Attack.BOMB),
    (hostile.zip_overlapping, {}, "zip", Attack.BOMB),
    (hostile.zip_encrypted, {}, "zip", None),  # refused for what it is, not an attack
    (hostile.zip_device, {}, "zip", None),
    (hostile.tar_duplicate, {}, "tgz", None),
]


@pytest.mark.parametrize(
    ("builder", "kwargs", "kind", "attack"), ATTACKS,
    ids=[f"{b.__name__}-{kind}-{'-'.join(map(str, kw.values()))}" for b, kw, kind, _ in ATTACKS],
)
def test_a_refusal_names_the_attack(tmp_path: Path, builder, kwargs: dict, kind: str,
                                    attack: Attack | None) -> None:
    assert refused(builder(tmp_path / f"hostile.{kind}", **kwargs), kind).attack is attack


def test_a_member_count_or_size_over_the_limits_is_a_bomb(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip")
    assert refused(path, "zip", ArchiveLimits(max_members=1)).attack is Attack.BOMB
    assert refused(path, "zip", ArchiveLimits(max_total_bytes=10)).attack is Attack.BOMB


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_empty_file_is_corrupt(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"empty.{kind}"
    path.write_bytes(b"")
    assert refused(path, kind).reason == ARCHIVE_CORRUPT


def test_zip_named_tgz_is_corrupt_as_tar(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.tgz")
    assert refused(path, "tgz").reason == ARCHIVE_CORRUPT


def test_missing_file_is_not_a_verdict(tmp_path: Path) -> None:
    # An I/O problem on our side must not become a rejection of the provider's file.
    with pytest.raises(FileNotFoundError):
        inspect_archive(tmp_path / "absent.zip", "zip")
    with pytest.raises(FileNotFoundError):
        inspect_archive(tmp_path / "absent.tgz", "tgz")


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_limits(tmp_path: Path, kind: str) -> None:
    if kind == "zip":
        path = hostile.safe_zip(tmp_path / "p.zip", hostile.sample_safe_files())
    else:
        path = hostile.safe_tar(tmp_path / "p.tgz", hostile.sample_safe_files())
    big = f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml"  # 1.5 MB

    error = refused(path, kind, ArchiveLimits(max_members=3))
    assert error.reason == ARCHIVE_UNSAFE and "more than 3 members" in error.detail

    error = refused(path, kind, ArchiveLimits(max_member_bytes=1_000_000))
    assert error.reason == ARCHIVE_UNSAFE and big in error.detail and "1000000" in error.detail

    error = refused(path, kind, ArchiveLimits(max_total_bytes=1_600_000))
    assert error.reason == ARCHIVE_UNSAFE and "total" in error.detail

    error = refused(path, kind, ArchiveLimits(max_ratio=2, ratio_floor_bytes=1000))
    assert error.reason == ARCHIVE_UNSAFE and ("ratio" in error.detail or "times" in error.detail)


def test_small_repetitive_member_is_below_the_ratio_floor(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip", {"manifest.safe": b"<a/>" * 200_000})  # 800 KB
    assert inspect_archive(path, "zip")


# --- declared sizes that lie ----------------------------------------------------------------


def test_member_yielding_more_than_declared_is_stopped_when_streamed(tmp_path: Path) -> None:
    path = hostile.zip_lying_size(tmp_path / "lie.zip")  # 10 MiB of zeros declared as 1000 bytes
    members = inspect_zip(path, ArchiveLimits())  # nothing in the directory gives it away
    liar = next(m for m in members if m.name.endswith("s1a-aux-cal.xml"))
    assert liar.size == 1000
    received = 0
    with pytest.raises(UnsafeArchive) as info:
        for chunk in iter_member_chunks(path, "zip", liar.name, ArchiveLimits(), chunk_size=256):
            received += len(chunk)
    assert info.value.reason == ARCHIVE_UNSAFE
    assert "more than the 1000 bytes" in info.value.detail and liar.name in info.value.detail
    assert received <= 1000
    with pytest.raises(UnsafeArchive):  # the one-pass reader guards the same way
        for _member, chunks in iter_members(path, "zip"):
            for _ in chunks:
                pass


def test_member_yielding_less_than_declared_is_corrupt(tmp_path: Path) -> None:
    content = bytes(range(256)) * 40
    path = hostile.zip_lying_size(tmp_path / "lie.zip", content, declared=len(content) + 100)
    name = f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml"
    with pytest.raises(UnsafeArchive) as info:
        read_all(path, "zip", name)
    assert info.value.reason == ARCHIVE_CORRUPT and name in info.value.detail


def test_damaged_member_data_fails_when_streamed(tmp_path: Path) -> None:
    path = hostile.safe_zip(tmp_path / "p.zip", {"manifest.safe": bytes(range(256)) * 64})
    name = f"{DEFAULT_SAFE}/manifest.safe"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        start = info.header_offset + 30 + len(info.orig_filename)
        data[start + info.compress_size // 2] ^= 0xFF  # one bit flip inside the deflate stream
    path.write_bytes(bytes(data))
    inspect_zip(path, ArchiveLimits())  # the directory is intact
    with pytest.raises(UnsafeArchive) as err:
        read_all(path, "zip", name)
    assert err.value.reason == ARCHIVE_CORRUPT


def test_tar_member_streaming_is_bounded_by_the_member_limit(tmp_path: Path) -> None:
    path = hostile.safe_tar(tmp_path / "p.tgz", {"manifest.safe": b"x" * 5000})
    with pytest.raises(UnsafeArchive):
        b"".join(
            iter_member_chunks(
                path, "tgz", f"{DEFAULT_SAFE}/manifest.safe", ArchiveLimits(max_member_bytes=4000)
            )
        )


# --- safe_root ---------------------------------------------------------------------------------


def m(name: str, is_dir: bool = False) -> Member:
    return Member(name, 0 if is_dir else 1, None, is_dir)


def test_safe_root() -> None:
    assert safe_root([m("A.SAFE", True), m("A.SAFE/manifest.safe")]) == "A.SAFE"
    assert safe_root([m("A.SAFE/manifest.safe"), m("A.SAFE/data/x.xml")]) == "A.SAFE"
    assert safe_root([m("A.SAFE/manifest.safe"), m("B.SAFE/manifest.safe")]) is None
    assert safe_root([m("A.SAFE/manifest.safe"), m("readme.txt")]) is None
    assert safe_root([m("A.SAFE")]) is None  # a file, not a folder
    assert safe_root([]) is None


# --- properties ---------------------------------------------------------------------------------

names = st.text(alphabet=st.sampled_from(list("ab./\\:C\x00 ")), min_size=1, max_size=12)


@given(names)
def test_any_accepted_name_stays_inside_the_target_folder(name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")
    try:
        members = _inspect_bytes(buf.getvalue(), "zip")
    except UnsafeArchive as e:
        assert e.reason == ARCHIVE_UNSAFE
        return
    for member in members:
        parts = member.name.split("/")
        assert member.name and ".." not in parts and "" not in parts and "." not in parts
        assert "\\" not in member.name and not re.match("[A-Za-z]:", member.name)


def _inspect_bytes(data: bytes, kind: str) -> list[Member]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=f".{kind}") as f:
        f.write(data)
        f.flush()
        members = inspect_archive(Path(f.name), kind)
        for _member, chunks in iter_members(Path(f.name), kind):
            for _ in chunks:
                pass
        return members


def _clean_bytes(kind: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"p.{kind}"
        if kind == "zip":
            hostile.safe_zip(path)
        else:
            hostile.safe_tar(path)
        return path.read_bytes()


CLEAN = {kind: _clean_bytes(kind) for kind in ("zip", "tgz")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["zip", "tgz"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_bytes_give_a_verdict_never_a_crash(kind: str, edits, cut) -> None:
    data = bytearray(CLEAN[kind])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    try:
        _inspect_bytes(bytes(data), kind)
    except UnsafeArchive as e:
        assert e.reason in (ARCHIVE_UNSAFE, ARCHIVE_CORRUPT)
