"""Run the web app with uvicorn: loopback by default, one process, models shared."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from tf2torch.errors import Tf2TorchError
from tf2torch.web.app import LOOPBACK_HOSTS, Settings, create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int, name: str | None = None) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    base = f"http://{shown}:{port}/"
    return base + (f"models/{name}/" if name else "")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, name: str | None = None,
          open_browser: bool = False, log_level: str = "info") -> None:
    """Serve until interrupted. `name` is the page to print (and open with `open_browser`)."""
    import uvicorn

    if is_loopback(host):
        settings = dataclasses.replace(settings, hosts=(*LOOPBACK_HOSTS, host))
    else:
        print(f"tf2torch: serving on {host}, which is not a loopback address: anyone who can "
              "reach this machine can read the repository and run its models (no log-in)",
              file=sys.stderr)
    app = create_app(settings)
    if name is not None:
        app.state.tf2torch.catalog.entry(name)  # an unknown name fails now, with suggestions
    _check_port_free(host, port)
    url = page_url("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, name)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1,
                            server_header=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    print(f"tf2torch: serving {Path(settings.home) / 'models'} at {url}  (Ctrl-C stops)",
          file=sys.stderr)
    if open_browser:
        threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
    server.run()


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line before uvicorn logs a bind error and exits."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise Tf2TorchError(f"cannot listen on {host}:{port} ({exc.strerror}); is another "
                                "server running there? Choose another with --port") from None


def _open_when_up(server, url: str) -> None:
    import time

    for _ in range(200):
        if server.started:
            if not webbrowser.open(url):
                print(f"tf2torch: no browser to open here; open {url} yourself", file=sys.stderr)
            return
        time.sleep(0.05)
