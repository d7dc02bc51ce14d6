"""JSON Schemas of the event `data` models, generated and checked in under events/schemas/.

`python -m events.schemas` rewrites them; a test fails when the checked-in files drift from
the models, so a contract change is always a reviewed diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from events.registry import DATA_MODELS

FOLDER = Path(__file__).with_name("schemas")


def render(event_type: str) -> str:
    schema = DATA_MODELS[event_type].model_json_schema()
    schema["$id"] = f"urn:auxip:schema:{event_type}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def path_for(event_type: str) -> Path:
    return FOLDER / f"{event_type}.json"


def write_all() -> list[Path]:
    FOLDER.mkdir(exist_ok=True)
    written = []
    for event_type in DATA_MODELS:
        path = path_for(event_type)
        path.write_text(render(event_type), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all():
        print(written_path, file=sys.stderr)
