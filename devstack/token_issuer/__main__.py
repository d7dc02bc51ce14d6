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


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds serve_forever, which closes the socket


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = IssuerSettings()
    layout = Layout(settings.port_base)
    config = IssuerConfig.from_settings(settings)
    # Threaded: a slow client must not hold up token requests of the others.
    server = make_server(layout.host, layout.token_port, create_app(config), threaded=True)
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
