"""prip: the OData v4 publication interface at /odata/v1 (PRIP/AUXIP dialect): Products,
$value downloads, Subscriptions, $metadata. The logic is in shared.prip."""

from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.adapters.telemetry.instrument import instrumented
from shared.prip import routes, service

# At start: a missing AUXIP_* setting stops the process here, named, not at each event.
service.check_environment()


@functions_framework.http
@instrumented("prip")
def handle(request: flask.Request) -> flask.Response:
    return routes.dispatch(request)


@functions_framework.errorhandler(HTTPException)
def refused_before_dispatch(error: HTTPException) -> flask.Response:
    return routes.framework_error(error)
