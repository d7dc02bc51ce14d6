"""What a quarantined file tells a SIEM: the security event of one rejection
(docs/security-events.md). A virus is malware; an archive built to escape the folder it is
unpacked in (zip slip: '..' or an absolute path, a link out), to exhaust memory or disk (a
bomb: sizes or ratio over the limits, too many members) or an XML document with a DTD or
entities (XXE, billion laughs) is an attack on the interface point; the rest is a file
refused for what it is (a bad name, a wrong checksum...). Which attack is the refusal's own
word (`shared.core.attacks.Attack`, set where archive_safety or metadata refused the file),
not a reading of its text."""

from __future__ import annotations

from events.files import RejectReason
from shared.adapters.telemetry import security_events
from shared.core.attacks import Attack


def attack_of(reason: RejectReason, attack: Attack | None) -> str | None:
    """`zip_slip` | `bomb` | `xxe` | `unsafe_archive`, or None for a plain refusal."""
    if reason is RejectReason.ARCHIVE_UNSAFE:
        return str(attack) if attack is not None else "unsafe_archive"
    if reason is RejectReason.METADATA_INVALID and attack is Attack.XXE:
        return str(attack)
    return None


def quarantined(name: str, reason: RejectReason, detail: str, *, quarantine_key: str,
                bucket: str, event_id: str, attack: Attack | None = None) -> None:
    """The one security event of a file moved to quarantine."""
    where = {"reason": reason.value, "file_name": name, "detail": detail[:500],
             "quarantine_key": quarantine_key, "inbox_bucket": bucket,
             "cloudevent_id": event_id}
    if reason is RejectReason.VIRUS_FOUND:
        virus = detail.rpartition(": ")[2].strip() or None
        security_events.emit("auxip.malware.detected", ["malware", "file"], "failure",
                             event_type="info", threat=virus, **where)
        return
    kind = attack_of(reason, attack)
    if kind is not None:
        security_events.emit("auxip.archive.attack", ["intrusion_detection", "file"],
                             "failure", event_type="denied", attack=kind, **where)
        return
    security_events.emit("auxip.file.quarantined", "file", "failure", event_type="info",
                         **where)
