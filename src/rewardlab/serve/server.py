"""Running the API under uvicorn until SIGTERM or Ctrl-C, then shutting down cleanly.

On SIGTERM (or the first Ctrl-C) uvicorn stops accepting connections, lets the requests in
flight finish (up to ``--shutdown-timeout`` seconds), and then the app's shutdown finishes every
batch still queued. The signal is then consumed here, so the command exits normally and says
what it served; a second Ctrl-C forces the exit.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rewardlab.config import ServeConfig
from rewardlab.serve.scorer import EnsembleScorer

__all__ = ["LOCAL_HOSTS", "bind", "require_serve_extra", "run_server", "security_warning"]

log = logging.getLogger("rewardlab")

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Hosts that only take connections from this machine."""


def require_serve_extra() -> None:
    """Fail with the install command when FastAPI or uvicorn is missing."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(f"rewardlab serve needs {' and '.join(missing)}: "
                           f"pip install 'rewardlab[serve]'")


def security_warning(settings: ServeConfig) -> str | None:
    """What to tell the user when the server is reachable from other machines."""
    if settings.host in LOCAL_HOSTS:
        return None
    if settings.api_key is None:
        return (f"warning: listening on {settings.host}, reachable from other machines, with no "
                f"authentication: anyone who can reach port {settings.port} can use this "
                f"server. Add --api-key (or $REWARDLAB_API_KEY), or bind to 127.0.0.1.")
    return (f"warning: listening on {settings.host} over plain HTTP: the API key travels "
            f"unencrypted; put a TLS proxy in front for untrusted networks.")


@contextmanager
def _signals_end_quietly() -> Iterator[list[int]]:
    """While uvicorn runs, SIGTERM and SIGINT are its own; afterwards it re-raises the one that
    stopped it, and this handler takes it, so the shutdown ends in a normal return."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda sig, frame: received.append(sig)) for s in signals}
    try:
        yield received
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or an error naming the flags.

    Bound before anything is announced: a port in use must fail the command, not follow a
    "serving ... on" line that was never true.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restarts rebind
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"--host {host} --port {port}: cannot listen there: "
                           f"{exc.strerror or exc} (another server on that port? choose "
                           f"another --port)") from None
    return sock


def run_server(scorer: EnsembleScorer, settings: ServeConfig, *, quiet: bool) -> dict[str, Any]:
    """Bind, announce, then serve ``scorer`` until a signal; return what ``/info`` would have
    said at the end."""
    import uvicorn

    from rewardlab.serve.app import create_app

    sock = bind(settings.host, settings.port)
    app = create_app(scorer, settings)
    service = app.state.service
    log.info("serving %s (M=%d, %s backend) on http://%s:%d; /get_reward returns %s",
             scorer.path, scorer.members, scorer.backend, settings.host,
             sock.getsockname()[1], service.reward)
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level="warning" if quiet else "info", access_log=False,
                            timeout_graceful_shutdown=settings.shutdown_timeout)
    server = uvicorn.Server(config)
    with sock, _signals_end_quietly() as received:
        server.run(sockets=[sock])
    info = service.info()
    info["stopped_by"] = [signal.Signals(s).name for s in received]
    return info
