"""What a refused file was built to do, when it was built to attack the interface point:
set where the refusal is raised (archive_safety, metadata), read by the security events
(shared.pipeline.ingestion.threats), never guessed from the refusal's wording."""

from __future__ import annotations

from enum import StrEnum


class Attack(StrEnum):
    # Escape the folder it is unpacked in: '..', an absolute path, a link out.
    ZIP_SLIP = "zip_slip"
    # Exhaust memory or disk: sizes, compression ratio or member count over the limits.
    BOMB = "bomb"
    # An XML document with a DTD, entities or external references (XXE, billion laughs).
    XXE = "xxe"
