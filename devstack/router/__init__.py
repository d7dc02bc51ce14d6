"""The local event router: the embedded stand-in for Knative Eventing's Kafka Broker.

It reads the Broker, Trigger and PingSource manifests under `knative/` and delivers
CloudEvents over HTTP (binary mode) with the same filters, retries and dead-letter sink the
Broker would use, keeping every event and delivery in PostgreSQL (schema `router`).

Modules: manifests (topology), filters and cesql (Trigger filters), wire (CloudEvents HTTP
binding), store (PostgreSQL), dispatch (delivery workers), ingress (HTTP), ping
(PingSource), cron, durations, logs, settings, server (the running router).
Run it with `python -m devstack.router`; `--check` validates the manifests.
"""
