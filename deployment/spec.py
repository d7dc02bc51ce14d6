"""knative/functions.yaml: how each function is deployed.

`defaults` apply to every function; an entry under `functions` overrides them field by field.
A function listed here is deployed only once its folder exists in functions/, so an entry
can be prepared before the code lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

_CONFIG = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class SpecError(ValueError):
    pass


class Quantity(BaseModel):
    model_config = _CONFIG
    request: str
    limit: str


class Subscription(BaseModel):
    """One event type the function consumes from the broker: one Trigger."""

    model_config = _CONFIG
    type: str
    # Overrides the Broker's delivery for this Trigger only (Knative `delivery` block).
    delivery: dict[str, Any] | None = None
    # More Knative `spec.filters` entries, all of which must match besides the type's.
    filters: tuple[dict[str, Any], ...] = ()


class Schedule(BaseModel):
    """One PingSource ticking the function directly (not through the broker)."""

    model_config = _CONFIG
    name: str | None = None
    cron: str
    timezone: str | None = None
    data: str | None = None
    content_type: str = "application/json"


class Function(BaseModel):
    model_config = _CONFIG
    concurrency: int = Field(ge=1)  # autoscaling.knative.dev/target
    min_scale: int = Field(ge=0)
    max_scale: int = Field(ge=1)
    timeout_seconds: int = Field(ge=1, le=600)  # Knative's default max-revision-timeout-seconds
    cpu: Quantity
    memory: Quantity
    public: bool  # reachable from outside the cluster; otherwise cluster-local
    subscribes: tuple[Subscription, ...] = ()
    schedules: tuple[Schedule, ...] = ()

    @field_validator("subscribes", mode="before")
    @classmethod
    def _bare_types(cls, value: Any) -> Any:
        # `subscribes: [org.auxip.x.v1]` is short for `[{type: org.auxip.x.v1}]`.
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value


class Spec(BaseModel):
    model_config = _CONFIG
    defaults: dict[str, Any]
    functions: dict[str, dict[str, Any]]

    def function(self, service: str) -> Function:
        """The deployment of `service`: its entry over the defaults."""
        entry = self.functions.get(service) or {}
        try:
            return Function.model_validate({**self.defaults, **entry})
        except ValidationError as error:
            raise SpecError(f"knative/functions.yaml: function {service}: {error}") from None


def load(path: Path) -> Spec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = Spec.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise SpecError(f"{path}: {error}") from None
    for service in spec.functions:
        spec.function(service)  # every entry must be complete and valid, deployed or not
    return spec
