"""Observability: JSON-lines logs (`logging`), OpenTelemetry traces carried in the CloudEvent
`traceparent` extension (`tracing`), Prometheus metrics with a `/metrics` route (`metrics`),
and the one decorator a function's `handle` wears to get all three (`instrument`)."""
