"""Catalogue and archive agreeing: `scrub` compares them (every catalogued product's objects
against the archive bucket's listing, checksums of a sample or of all), `repair` brings
missing or damaged bytes back from where they came without a second product."""
