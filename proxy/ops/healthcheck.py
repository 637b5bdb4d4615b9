"""``python -m proxy.ops.healthcheck [PATH]``: the container image's HEALTHCHECK.

Exits 0 when the proxy's operations endpoint answers ``PATH`` (default ``/healthz``) with
200, and 1 otherwise, with the reason on stderr (what ``docker inspect`` shows). It reads
the settings as ``mlproxy serve`` does (``MLPROXY_CONFIG``, ``MLPROXY_METRICS_LISTEN``...),
so the check follows the metrics address wherever the configuration puts it rather than a
port written into the Dockerfile, and it needs nothing the image lacks: no curl, only the
standard library. The request never goes through an ``HTTP_PROXY`` of the environment.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from proxy.config import load_config
from proxy.errors import ConfigError
from proxy.ops.endpoint import HEALTH_PATH

#: Seconds the endpoint has to answer (Docker's own --timeout is the outer bound).
TIMEOUT = 3.0


def probe_url(address: tuple[str, int], path: str) -> str:
    """Where to ask: a wildcard listen address is asked on the loopback.

    >>> probe_url(("0.0.0.0", 9104), "/healthz")
    'http://127.0.0.1:9104/healthz'
    >>> probe_url(("::", 9104), "/readyz")
    'http://[::1]:9104/readyz'
    >>> probe_url(("10.0.0.7", 9104), "/healthz")
    'http://10.0.0.7:9104/healthz'
    """
    host, port = address
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(path: str = HEALTH_PATH) -> str | None:
    """None when ``path`` answers 200, else why not."""
    try:
        address = load_config({}).metrics_address
    except ConfigError as exc:
        return f"configuration error: {exc}"
    if address is None:
        return "metrics_listen is off: nothing serves /healthz (set MLPROXY_METRICS_LISTEN)"
    url = probe_url(address, path)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:  # refused, timed out, unreachable
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    problem = check(*args[:1])
    if problem is not None:
        print(f"mlproxy healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
