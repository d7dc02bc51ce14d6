"""The security event of a quarantined file, from the real ingest step (PostgreSQL, RGW,
clamd of the test stack): malware with the virus name, an archive attack with its kind,
any other refusal with its reason; exactly one per rejection, also when the arrival is
delivered again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devstack import demo_products
from shared.adapters.runtime import Runtime
from shared.pipeline.ingestion.ingest import Outcome, ingest
from tests.core import hostile
from tests.pipeline.ingestion.conftest import Inbox

CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]>'
       b"<Earth_Explorer_File>&a;</Earth_Explorer_File>")


def _eof_name() -> str:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    name, _ = demo_products.orbit_eof("A", "AUX_RESORB", start, start.replace(hour=3),
                                      start.replace(hour=4), max_vectors=5)
    return name


def test_eicar_is_malware_with_the_virus_name(rt: Runtime, inbox: Inbox,
                                              security_events) -> None:  # type: ignore[no-untyped-def]
    name = _eof_name()
    arrived = inbox.put(name, hostile.eicar_bytes())
    assert ingest(rt, arrived, "ev-eicar").outcome is Outcome.REJECTED
    event = security_events.one("auxip.malware.detected", file__name=name)
    assert event["event.category"] == ["malware", "file"]
    assert event["event.reason"] == "virus_found" and event["event.outcome"] == "failure"
    assert "Eicar" in event["threat.software.name"]
    assert event["threat.software.type"] == "Malware"
    assert event["auxip.quarantine_key"] and event["auxip.cloudevent_id"] == "ev-eicar"
    assert security_events.events("auxip.file.quarantined") == []  # one event, not two


@pytest.mark.parametrize("attack", ["zip_slip", "bomb", "xxe"])
def test_an_archive_attack_is_named(rt: Runtime, inbox: Inbox, tmp_path, security_events,
                                    attack: str) -> None:  # type: ignore[no-untyped-def]
    key, body = {
        "zip_slip": (CAL + ".zip",
                     hostile.zip_slip(tmp_path / "slip.zip", f"{CAL}/../../etc/x").read_bytes()),
        "bomb": (CAL + ".zip", hostile.zip_bomb(tmp_path / "bomb.zip", mib=60).read_bytes()),
        "xxe": (_eof_name(), XXE),
    }[attack]
    arrived = inbox.put(key, body)
    assert ingest(rt, arrived, f"ev-{attack}").outcome is Outcome.REJECTED
    # Delivered again (at least once): the rejection is recorded once, and so is its event.
    ingest(rt, arrived, f"ev-{attack}")
    event = security_events.one("auxip.archive.attack", file__name=key)
    assert event["auxip.attack"] == attack
    assert event["event.category"] == ["intrusion_detection", "file"]
    assert event["event.type"] == ["denied"]
    assert event["event.reason"] == ("metadata_invalid" if attack == "xxe" else "archive_unsafe")


def test_a_plain_refusal_is_a_quarantined_file(rt: Runtime, inbox: Inbox,
                                               security_events) -> None:  # type: ignore[no-untyped-def]
    name = "S1Z_OPER_AUX_RESORB_whatever.EOF"
    assert ingest(rt, inbox.put(name, b"<x/>"), "ev-name").outcome is Outcome.REJECTED
    event = security_events.one("auxip.file.quarantined", file__name=name)
    assert (event["event.reason"], event["event.category"]) == ("name_invalid", ["file"])
    assert security_events.events("auxip.archive.attack") == []
