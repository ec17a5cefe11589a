"""Who may use the proxy (docs/configuration.md, "Access"): with `api-keys` set, a client must
send one; with none, only loopback clients are served; the /v1internal relay serves loopback
clients only, whatever the keys."""

from __future__ import annotations

import hmac
import ipaddress

from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.routing import route_of
from cliproxy.addons.routing import shape_of
from cliproxy.addons.state import State
from mitmproxy import http

AUTHORISED = "cliproxy_authorised"  # flow.metadata: the client passed the access rules


def client_key(request: http.Request) -> str | None:
    """The key a client sent, in any of the ways the three SDK families send one."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if name in request.headers:
            return request.headers[name].strip()
    return request.query.get("key")


def is_loopback(flow: http.HTTPFlow) -> bool:
    try:
        return ipaddress.ip_address(flow.client_conn.peername[0]).is_loopback
    except (ValueError, TypeError, IndexError):
        return False


def is_authorised(flow: http.HTTPFlow) -> bool:
    return bool(flow.metadata.get(AUTHORISED))


class Access:
    def __init__(self, state: State) -> None:
        self.state = state

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        route = route_of(flow)
        if route is not None and route.relay:
            if not is_loopback(flow):
                raise LocalAnswer(
                    error_response(
                        "google", 403, "the /v1internal relay serves loopback clients only"
                    )
                )
            flow.metadata[AUTHORISED] = True
            return
        denial = self._denial(flow)
        if denial is None:
            flow.metadata[AUTHORISED] = True
        elif route is None or route.action != "healthz":
            # readiness probes get /healthz without a key; account details need one
            raise LocalAnswer(denial)

    def _denial(self, flow: http.HTTPFlow) -> http.Response | None:
        keys = self.state.settings.api_keys
        shape = shape_of(flow)
        if not keys:
            if is_loopback(flow):
                return None
            return error_response(
                shape,
                403,
                "this proxy serves only loopback clients; set api-keys in config.yaml to allow "
                "remote clients",
            )
        given = client_key(flow.request)
        if given is not None and any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
            return None
        what = "missing API key" if given is None else "invalid API key"
        return error_response(
            shape,
            401,
            f"{what}: send one of config.yaml's api-keys as Authorization: Bearer, x-api-key, "
            "x-goog-api-key or ?key=",
        )
