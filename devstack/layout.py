"""Where each local process listens: every port derives from AUXIP_PORT_BASE.

Two stacks (a developer's `make up` and the test suite's) run side by side on one machine
by choosing different bases. In production Knative gives each Service its own URL and none
of this is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions import FUNCTIONS


@dataclass(frozen=True)
class Layout:
    port_base: int
    host: str = "127.0.0.1"

    @property
    def router_port(self) -> int:
        return self.port_base

    def function_port(self, service: str) -> int:
        return self.port_base + 1 + FUNCTIONS.index(service)

    @property
    def token_port(self) -> int:
        return self.port_base + 20

    @property
    def rgw_port(self) -> int:
        return self.port_base + 30

    @property
    def ceph_mon_port(self) -> int:
        return self.port_base + 31

    @property
    def clamd_port(self) -> int:
        return self.port_base + 32

    @property
    def postgres_port(self) -> int:
        """Only used when the stack has to run a private PostgreSQL cluster."""
        return self.port_base + 33

    @property
    def kafka_port(self) -> int:
        """The Kafka-protocol broker the router's KafkaSources consume from."""
        return self.port_base + 34

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def prometheus_port(self) -> int:
        """Only with `auxip up --with-monitoring`."""
        return self.port_base + 35

    @property
    def router_url(self) -> str:
        return f"http://{self.host}:{self.router_port}"

    def function_url(self, service: str) -> str:
        return f"http://{self.host}:{self.function_port(service)}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.rgw_port}"

