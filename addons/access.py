"""Who may use the proxy (docs/configuration.md, "Access"): with `api-keys` set, a client must
send one; with none, only loopback clients are served; the /v1internal relay serves loopback
clients only, whatever the keys."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Sequence

from cliproxy.addons.limits import answer_now
from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.routing import route_of
from cliproxy.addons.routing import shape_of
from cliproxy.addons.state import State
from mitmproxy import http

logger = logging.getLogger(__name__)

AUTHORISED = "cliproxy_authorised"  # flow.metadata: the client passed the access rules
CHECKED = "cliproxy_access_checked"  # flow.metadata: the rules ran (on the headers)


def client_key(request: http.Request) -> str | None:
    """The key a client sent, in any of the ways the three SDK families send one."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if name in request.headers:
            return request.headers[name].strip()
    return request.query.get("key")


FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)
# Code Assist method names and operation ids: nothing that could alter the upstream path
_RPC = re.compile(r"^[A-Za-z]{1,64}$")
_OPERATION = re.compile(r"^operations/[A-Za-z0-9_.\-]{1,200}$")


def _parse_address(text: str) -> Address | None:
    """An address as forwarding headers write it: bare, `[v6]:port`, `v4:port`, quoted."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chains(headers: http.Headers) -> list[list[Address | None]]:
    """The client addresses each forwarding header names, left (first hop) to right (last)."""
    chains: list[list[Address | None]] = []
    xff = headers.get_all("x-forwarded-for")
    if xff:
        chains.append([_parse_address(a) for v in xff for a in v.split(",")])
    fwd = headers.get_all("forwarded")
    if fwd:
        chains.append([_parse_address(m) for v in fwd for m in _FORWARDED_FOR.findall(v)] or [None])
    real = headers.get_all("x-real-ip")
    if real:
        chains.append([_parse_address(v) for v in real])
    return chains


def client_addresses(
    peer: str | None, headers: http.Headers, trusted: Sequence[Network]
) -> list[Address | None]:
    """Who the client is (docs/configuration.md "Access"): the TCP peer, unless the peer is a
    trusted reverse proxy; then, for each forwarding header, the right-most address that is not
    a trusted proxy (what the last trusted hop saw). Several headers give several candidates;
    the client counts as loopback only when all are. None: an address that cannot be read."""
    try:
        address: Address | None = ipaddress.ip_address(peer) if peer else None
    except ValueError:
        address = None
    chains = forwarded_chains(headers)
    if address is None or not chains or not any(address in net for net in trusted):
        return [address] if not chains else [address, None]
    found: list[Address | None] = []
    for chain in chains:
        pick: Address | None = chain[0]
        for hop in reversed(chain):
            if hop is None or not any(hop in net for net in trusted):
                pick = hop
                break
        found.append(pick)
    return found


def trusted_networks(cidrs: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def is_loopback(flow: http.HTTPFlow, trusted: Sequence[Network] = ()) -> bool:
    """A loopback TCP peer without forwarding headers (a reverse proxy on the same host must not
    turn the loopback rule into an open proxy), or, behind a trusted proxy, a loopback client."""
    peer = flow.client_conn.peername[0] if flow.client_conn.peername else None
    found = client_addresses(peer, flow.request.headers, trusted)
    return bool(found) and all(a is not None and a.is_loopback for a in found)


def is_authorised(flow: http.HTTPFlow) -> bool:
    return bool(flow.metadata.get(AUTHORISED))


class Access:
    """The rules are checked on the request headers (`requestheaders`), before any body byte is
    read: a refused request costs no memory (addons/limits.py `answer_now`). `request` checks
    again only flows that never went through `requestheaders` (tests that call it alone)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._trusted: tuple[list[str], list[Network]] = ([], [])

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        flow.metadata[CHECKED] = True
        try:
            denial = self._check(flow)
        except Exception:  # a crash here would leave the flow unchecked: refuse it instead
            logger.exception("internal error in the access check")
            denial = error_response(shape_of(flow), 500, "internal proxy error (see the log)")
        if denial is not None:
            answer_now(flow, denial)
        mask_client_key(flow)

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(CHECKED):
            return
        flow.metadata[CHECKED] = True
        denial = self._check(flow)
        mask_client_key(flow)
        if denial is not None:
            raise LocalAnswer(denial)

    def _check(self, flow: http.HTTPFlow) -> http.Response | None:
        """The refusal of this request, or None (then it is marked authorised where keys or
        loopback allow; an unauthorised /healthz still gets its key-less answer)."""
        route = route_of(flow)
        if route is not None and route.relay:
            if not is_loopback(flow, self.trusted()):
                return error_response(
                    "google", 403, "the /v1internal relay serves loopback clients only"
                )
            refusal = relay_refusal(flow.request.method, route.action, route.rpc or "")
            if refusal is not None:
                return refusal
            flow.metadata[AUTHORISED] = True
            return None
        denial = self._denial(flow)
        if denial is None:
            flow.metadata[AUTHORISED] = True
            return None
        if route is None or route.action != "healthz":
            # readiness probes get /healthz without a key; account details need one
            return denial
        return None

    def trusted(self) -> list[Network]:
        cidrs = self.state.settings.trusted_proxies
        if self._trusted[0] != cidrs:
            self._trusted = (list(cidrs), trusted_networks(cidrs))
        return self._trusted[1]

    def _denial(self, flow: http.HTTPFlow) -> http.Response | None:
        keys = self.state.settings.api_keys
        shape = shape_of(flow)
        if not keys:
            if is_loopback(flow, self.trusted()):
                return None
            return error_response(
                shape,
                403,
                "this proxy serves only loopback clients; set api-keys in config.yaml to allow "
                "remote clients",
            )
        given = client_key(flow.request)
        if given is not None and any(
            hmac.compare_digest(given.encode("utf-8", "surrogateescape"), k.encode()) for k in keys
        ):
            return None
        what = "missing API key" if given is None else "invalid API key"
        return error_response(
            shape,
            401,
            f"{what}: send one of config.yaml's api-keys as Authorization: Bearer, x-api-key, "
            "x-goog-api-key or ?key=",
        )


def mask_client_key(flow: http.HTTPFlow) -> None:
    """Once checked, a client's `?key=` is kept only as its last 4 characters: nothing after
    the check needs it, and mitmproxy's own flow lines (`debug: true`), mitmweb and any log
    would otherwise show it (docs/configuration.md "Logs")."""
    if "key" in flow.request.query:
        value = flow.request.query.get("key") or ""
        flow.request.query["key"] = "…" + value[-4:] if len(value) > 8 else "…"


def key_matches(given: str, keys: Sequence[str]) -> bool:
    """Constant-time compare against every configured key; a key that is not even valid text
    (non-UTF-8 header bytes, lone surrogates) matches none."""
    try:
        raw = given.encode("utf-8")
    except UnicodeEncodeError:
        return False
    found = False
    for k in keys:
        found |= hmac.compare_digest(raw, k.encode("utf-8"))
    return found


def relay_refusal(method: str, action: str, rpc: str) -> http.Response | None:
    """The relay forwards only GET/POST on /v1internal:{method} and /v1internal/operations/{id}
    (docs/configuration.md "Access"): anything else could reach other upstream paths with a
    pool token."""
    if method not in ("GET", "POST"):
        return error_response("google", 405, f"method {method} is not served on /v1internal")
    if action == "relay_operation":
        ok = _OPERATION.match(rpc) is not None
    else:
        ok = _RPC.match(rpc) is not None
    if not ok:
        return error_response("google", 404, "no such Code Assist method")
    return None
