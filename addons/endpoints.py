"""Endpoints answered here, without an upstream: /healthz and the model lists."""

from __future__ import annotations

from cliproxy.addons.access import is_authorised
from cliproxy.addons.accounts.providers import PROVIDERS
from cliproxy.addons.accounts.status import account_status
from cliproxy.addons.local import LocalAnswer
from cliproxy.addons.local import error_response
from cliproxy.addons.local import json_response
from cliproxy.addons.local import local_answers
from cliproxy.addons.routing import route_of
from cliproxy.addons.state import State
from cliproxy.translators.registry import SHAPES
from mitmproxy import http


class LocalEndpoints:
    def __init__(self, state: State) -> None:
        self.state = state

    @local_answers
    async def request(self, flow: http.HTTPFlow) -> None:
        route = route_of(flow)
        if route is None:
            return
        if route.action == "healthz":
            body = self.health() if is_authorised(flow) else {"status": "ok", "accounts": {}}
            raise LocalAnswer(json_response(200, body))
        shape = SHAPES[route.shape]
        if route.action == "models":
            raise LocalAnswer(json_response(200, shape.models_list(self.available_models())))
        if route.action == "model":
            model = route.model or ""
            if model not in set(self.available_models()):
                message = f"model {model!r} is not served by this proxy"
                raise LocalAnswer(error_response(route.shape, 404, message))
            raise LocalAnswer(json_response(200, shape.model_object(model)))

    def available_models(self) -> list[str]:
        """The models of every provider with a usable account, and the aliases that reach
        them."""
        pool = self.state.pool
        models: list[str] = []
        for provider, info in PROVIDERS.items():
            if pool is not None and pool.usable(provider):
                models.extend(info.models)
        servable = set(models)
        for alias, target in self.state.settings.model_aliases.items():
            if target in servable and alias not in servable:
                models.append(alias)
        return models

    def health(self) -> dict:
        pool = self.state.pool
        accounts = {acc.name: account_status(acc) for acc in (pool.accounts if pool else [])}
        return {"status": "ok", "accounts": accounts, "models": self.available_models()}
