"""auxip's library: what the functions, the operator CLI and the local stack share."""

import sys

# httpx's package imports its command-line client (httpx._main) whenever click, rich and
# pygments are installed, and rich is (auxip's own CLI needs it): +3.2 MB and ~35 ms at the
# start of every function that sends an event, for a client no auxip process runs. None in
# sys.modules makes that one import fail, which httpx expects (its `httpx.main` then says
# to install httpx[cli]); the `httpx` command, a process of its own, is untouched.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
