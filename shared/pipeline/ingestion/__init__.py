"""Ingestion: from an object in the inbox to a catalogued, archived product, or to
quarantine with a reason. Nothing here knows about HTTP or CloudEvents."""
