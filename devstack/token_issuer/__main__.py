"""`python -m devstack.token_issuer`: serve the local realm on Layout(port_base).token_port,
loopback only, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from werkzeug.serving import make_server

from devstack.layout import Layout
from devstack.token_issuer.app import IssuerConfig, IssuerSettings, create_app
from devstack.token_issuer.realm_file import RealmError


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds serve_forever, which closes the socket


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = IssuerSettings()
    layout = Layout(settings.port_base)
    try:
        config = IssuerConfig.from_settings(settings)
        app = create_app(config)
    except RealmError as error:
        print(f"token issuer: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    # Threaded: a slow client must not hold up token requests of the others.
    server = make_server(layout.host, layout.token_port, app, threaded=True)
    signal.signal(signal.SIGTERM, _stop)
    print(f"token issuer {config.issuer} ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
