"""Base of every event `data` model: strict (unknown fields refused) and immutable."""

from pydantic import BaseModel, ConfigDict


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
