"""The cold-start baseline: functions-framework functions that do nothing. Started exactly
as the stack starts a real function, they give the floor (Python, Flask, gunicorn, the
framework) each function's start time and memory are compared with."""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def handle_event(event: CloudEvent) -> None:
    return None


@functions_framework.http
def handle_http(request: flask.Request) -> flask.Response:
    return flask.Response("{}", status=200, mimetype="application/json")
