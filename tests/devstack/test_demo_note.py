"""`make run` (auxip demo) tells whether clients can search without a token, and how."""

from __future__ import annotations

from devstack.demo_command import _anonymous_note


def test_the_demo_says_how_to_open_the_catalogue(monkeypatch):
    monkeypatch.delenv("AUXIP_ANONYMOUS_CATALOGUE", raising=False)
    off = _anonymous_note()
    assert "off" in off and "AUXIP_ANONYMOUS_CATALOGUE=true" in off and "CDSE" in off
    monkeypatch.setenv("AUXIP_ANONYMOUS_CATALOGUE", "true")
    assert _anonymous_note().startswith("Anonymous catalogue: on")
