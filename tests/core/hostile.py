"""Builders of hostile (and clean) files, for the archive-safety tests and the pipeline tests.

Every builder writes one real file at `path` and returns `path`. Hostile archives keep a
plausible SAFE folder around their trap, as an attacker would.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "real"
DEFAULT_SAFE = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
MiB = 1024 * 1024


def eicar_bytes() -> bytes:
    """The 68-byte EICAR anti-virus test string, assembled here so that this source file
    itself never contains it (a scanner would flag the repository)."""
    head = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    return head + b"EICAR-STANDARD-" + b"ANTIVIRUS-TEST-" + b"FILE!$H+H*"


# --- clean SAFE folders -------------------------------------------------------------------


def synthetic_safe_files() -> dict[str, bytes]:
    """A minimal SAFE layout (paths relative to the .SAFE folder)."""
    manifest = b'<?xml version="1.0"?>\n<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>\n'
    return {
        "manifest.safe": manifest,
        "data/s1a-aux-cal.xml": b"<auxCal>" + b"<x>1</x>" * 200 + b"</auxCal>\n",
        "support/s1-aux-cal.xsd": b'<?xml version="1.0"?>\n<xsd:schema/>\n',
    }


def sample_safe_files(name: str = DEFAULT_SAFE) -> dict[str, bytes]:
    """The files of a real SAFE folder from tests/samples/real."""
    root = SAMPLES / name
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _folders(files: Mapping[str, bytes]) -> list[str]:
    dirs = {"/".join(rel.split("/")[:i]) for rel in files for i in range(1, rel.count("/") + 1)}
    return sorted(dirs)


def safe_zip(
    path: Path,
    files: Mapping[str, bytes] | None = None,
    root: str = DEFAULT_SAFE,
    folder_entries: bool = True,
) -> Path:
    """A zipped SAFE: `root/` and its content, deflated, as ESA's tools write them."""
    files = synthetic_safe_files() if files is None else files
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if folder_entries:
            zf.writestr(f"{root}/", b"")
            for d in _folders(files):
                zf.writestr(f"{root}/{d}/", b"")
        for rel, data in files.items():
            zf.writestr(f"{root}/{rel}", data)
    return path


def safe_tar(
    path: Path,
    files: Mapping[str, bytes] | None = None,
    root: str = DEFAULT_SAFE,
    compression: str = "gz",
    prefix: str = "",
) -> Path:
    """A tarred SAFE (.tgz by default; compression '' for a plain tar). `prefix='./'`
    gives the names `tar -C dir .` writes."""
    files = synthetic_safe_files() if files is None else files
    with tarfile.open(path, f"w:{compression}") as tf:
        for d in ["", *_folders(files)]:
            info = tarfile.TarInfo(f"{prefix}{root}/{d}".rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        for rel, data in files.items():
            _tar_add(tf, f"{prefix}{root}/{rel}", data)
    return path


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _zip_with(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we mean to write
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{DEFAULT_SAFE}/manifest.safe", b"<xfdu/>")
            for name, data in entries:
                zf.writestr(name, data)
    return path


def _tgz_with(path: Path, infos: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        _tar_add(tf, f"{DEFAULT_SAFE}/manifest.safe", b"<xfdu/>")
        for info, data in infos:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


# --- names that escape ------------------------------------------------------------------


def zip_slip(path: Path, name: str = f"{DEFAULT_SAFE}/../../../etc/cron.d/auxip") -> Path:
    return _zip_with(path, [(name, b"* * * * * root sh -c 'id'\n")])


def zip_absolute(path: Path, name: str = "/etc/cron.d/auxip") -> Path:
    """An absolute member name; pass e.g. 'C:\\\\x' or 'C:/x' for the Windows forms."""
    return _zip_with(path, [(name, b"owned\n")])


def zip_nul_name(path: Path) -> Path:
    """A name with a NUL byte: some extractors stop the name there, others do not."""
    _zip_with(path, [(f"{DEFAULT_SAFE}/data/x.xml_.exe", b"MZ")])
    path.write_bytes(path.read_bytes().replace(b"x.xml_.exe", b"x.xml\x00.exe"))
    return path


def tar_slip(path: Path, name: str = "../evil.sh") -> Path:
    info = tarfile.TarInfo(name)
    info.size = 5
    return _tgz_with(path, [(info, b"evil\n")])


# --- links and special files --------------------------------------------------------------


def zip_symlink(path: Path, target: str = "/etc/passwd") -> Path:
    info = zipfile.ZipInfo(f"{DEFAULT_SAFE}/data/link.xml")
    info.create_system = 3  # unix: external_attr carries a mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip_with(path, [(info, target.encode())])


def zip_device(path: Path) -> Path:
    info = zipfile.ZipInfo(f"{DEFAULT_SAFE}/data/dev.xml")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o600) << 16
    return _zip_with(path, [(info, b"")])


def tar_symlink(path: Path, target: str = "/etc/passwd") -> Path:
    info = tarfile.TarInfo(f"{DEFAULT_SAFE}/data/link.xml")
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return _tgz_with(path, [(info, None)])


def tar_hardlink(path: Path, target: str = "/etc/shadow") -> Path:
    info = tarfile.TarInfo(f"{DEFAULT_SAFE}/data/link.xml")
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return _tgz_with(path, [(info, None)])


def tar_device(path: Path, kind: bytes = tarfile.CHRTYPE) -> Path:
    """A character device by default; tarfile.FIFOTYPE or BLKTYPE for the others."""
    info = tarfile.TarInfo(f"{DEFAULT_SAFE}/data/dev")
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return _tgz_with(path, [(info, None)])


# --- names that clash ----------------------------------------------------------------------


def zip_duplicate(path: Path) -> Path:
    name = f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml"
    return _zip_with(path, [(name, b"<a/>"), (f"{DEFAULT_SAFE}/./data//s1a-aux-cal.xml", b"<b/>")])


def tar_duplicate(path: Path) -> Path:
    infos = []
    for data in (b"<a/>", b"<b/>"):
        info = tarfile.TarInfo(f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml")
        info.size = len(data)
        infos.append((info, data))
    return _tgz_with(path, infos)


def zip_file_and_folder(path: Path) -> Path:
    """'data' is a file, and also the folder of 'data/x.xml'."""
    return _zip_with(
        path, [(f"{DEFAULT_SAFE}/data", b"file"), (f"{DEFAULT_SAFE}/data/x.xml", b"<x/>")]
    )


# --- sizes and ratios ----------------------------------------------------------------------


def zip_bomb(path: Path, mib: int = 50) -> Path:
    """One real high-ratio member: `mib` MiB of zeros deflate to ~1/1000 of that."""
    return _zip_with(path, [(f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml", bytes(mib * MiB))])


def tar_bomb(path: Path, mib: int = 50) -> Path:
    info = tarfile.TarInfo(f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml")
    info.size = mib * MiB
    return _tgz_with(path, [(info, bytes(mib * MiB))])


def _central_entries(data: bytes) -> list[int]:
    """Offsets of the central-directory entries, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        pos = zf.start_dir  # type: ignore[attr-defined]
        offsets = []
        for _ in zf.infolist():
            assert data[pos : pos + 4] == b"PK\x01\x02"
            name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
            offsets.append(pos)
            pos += 46 + name_len + extra_len + comment_len
    return offsets


def _local_offset(data: bytes, central: int) -> int:
    return struct.unpack_from("<I", data, central + 42)[0]


def zip_lying_size(path: Path, content: bytes | None = None, declared: int = 1000) -> Path:
    """A member whose headers (central and local) declare `declared` bytes for `content`
    (default 10 MiB of zeros: a bomb that passes any check made on declared sizes)."""
    content = bytes(10 * MiB) if content is None else content
    _zip_with(path, [(f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml", content)])
    data = bytearray(path.read_bytes())
    central = _central_entries(bytes(data))[-1]
    struct.pack_into("<I", data, central + 24, declared)
    struct.pack_into("<I", data, _local_offset(bytes(data), central) + 22, declared)
    path.write_bytes(bytes(data))
    return path


def zip_encrypted(path: Path) -> Path:
    """A member flagged as (traditionally) encrypted in both headers."""
    _zip_with(path, [(f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml", b"<secret/>" * 10)])
    data = bytearray(path.read_bytes())
    central = _central_entries(bytes(data))[-1]
    local = _local_offset(bytes(data), central)
    for offset in (central + 8, local + 6):
        (flags,) = struct.unpack_from("<H", data, offset)
        struct.pack_into("<H", data, offset, flags | 0x1)
    path.write_bytes(bytes(data))
    return path


def zip_overlapping(path: Path) -> Path:
    """Two directory entries pointing at the same local data (the construction behind the
    highest-ratio non-recursive zip bombs)."""
    _zip_with(
        path,
        [(f"{DEFAULT_SAFE}/data/a.xml", b"<a/>" * 100), (f"{DEFAULT_SAFE}/data/b.xml", b"<b/>")],
    )
    data = bytearray(path.read_bytes())
    entries = _central_entries(bytes(data))
    struct.pack_into("<I", data, entries[2] + 42, _local_offset(bytes(data), entries[1]))
    path.write_bytes(bytes(data))
    return path


def zip_with_prefix(path: Path, prefix: bytes = b"MZ\x90\x00" + bytes(508)) -> Path:
    """A zip behind other bytes (a self-extracting executable or a polyglot)."""
    safe_zip(path)
    path.write_bytes(prefix + path.read_bytes())
    return path


# --- broken bytes --------------------------------------------------------------------------


def truncated_zip(path: Path) -> Path:
    safe_zip(path, sample_safe_files())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_tgz(path: Path) -> Path:
    safe_tar(path, sample_safe_files())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def tar_without_end(path: Path) -> Path:
    """A plain tar cut exactly after a member's data: no end-of-archive marker (tarfile
    reads it as complete and says nothing)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _tar_add(tf, f"{DEFAULT_SAFE}/manifest.safe", b"<xfdu/>")
        end = tf.offset
        _tar_add(tf, f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml", b"<x/>" * 300)
    path.write_bytes(buf.getvalue()[:end])
    return path


def tar_garbled_header(path: Path) -> Path:
    """A plain tar whose second header is noise (tarfile also stops silently there)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _tar_add(tf, f"{DEFAULT_SAFE}/manifest.safe", b"<xfdu/>")
        end = tf.offset
        _tar_add(tf, f"{DEFAULT_SAFE}/data/s1a-aux-cal.xml", b"<x/>" * 300)
    data = bytearray(buf.getvalue())
    data[end : end + 512] = bytes(range(256)) * 2
    path.write_bytes(bytes(data))
    return path


def tar_trailing_data(path: Path, payload: bytes | None = None) -> Path:
    """A valid .tgz followed, inside the same gzip stream, by bytes after its end marker."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _tar_add(tf, f"{DEFAULT_SAFE}/manifest.safe", b"<xfdu/>")
    payload = eicar_bytes() if payload is None else payload
    path.write_bytes(gzip.compress(buf.getvalue() + payload))
    return path


def not_an_archive(path: Path) -> Path:
    path.write_bytes(b"<?xml version='1.0'?>\n<notAnArchive>plain text</notAnArchive>\n" * 20)
    return path
