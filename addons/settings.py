"""config.yaml -> a validated, immutable Settings model (docs/configuration.md "Keys").

Keys are kebab-case on disk. Every key has its default here and nowhere else; an unknown key or a
wrong type is reported as one line naming the key, so start-up can stop with a clear message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def parse_size(value: object) -> int:
    """`32MiB`, `512KiB`, `100B` or a plain integer of bytes (docs/configuration.md "Keys")."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 32MiB or a number of bytes")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError("must be a size such as 32MiB, 512KiB or a number of bytes")
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "CLIPROXY_CONFIG"


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=_kebab, populate_by_name=True
    )


class QuotaExceeded(_Section):
    switch_project: bool = True
    switch_preview_model: bool = True


class Endpoints(_Section):
    gemini_cli: str = "https://cloudcode-pa.googleapis.com"
    codex: str = "https://chatgpt.com/backend-api/codex"
    ai_studio: str = "https://generativelanguage.googleapis.com"
    google_authorize: str = "https://accounts.google.com/o/oauth2/auth"
    google_token: str = "https://oauth2.googleapis.com/token"
    google_userinfo: str = "https://www.googleapis.com/oauth2/v1/userinfo"
    openai_authorize: str = "https://auth.openai.com/oauth/authorize"
    openai_token: str = "https://auth.openai.com/oauth/token"

    @field_validator("*")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class Timeouts(_Section):
    """Seconds (docs/configuration.md "Timeouts")."""

    client_headers: float = Field(default=10.0, gt=0, le=3600)
    client_body: float = Field(default=60.0, gt=0, le=3600)
    upstream_connect: float = Field(default=15.0, gt=0, le=3600)
    upstream_idle: float = Field(default=600.0, gt=0, le=86400)


class Settings(_Section):
    host: str = ""
    port: int = Field(default=8317, ge=1, le=65535)
    auth_dir: str = "~/.cli-proxy-api"
    proxy_url: str = ""
    debug: bool = False
    request_log: bool = False
    api_keys: list[str] = Field(default_factory=list)
    generative_language_api_key: list[str] = Field(default_factory=list)
    quota_exceeded: QuotaExceeded = Field(default_factory=QuotaExceeded)
    request_retry: int = Field(default=3, ge=1, le=20)
    model_aliases: dict[str, str] = Field(default_factory=dict)
    endpoints: Endpoints = Field(default_factory=Endpoints)
    max_body_size: int = 32 << 20
    timeouts: Timeouts = Field(default_factory=Timeouts)
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("max_body_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        return parse_size(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR") from None
        return value

    # "" = in-process state; redis://HOST:PORT/DB = shared by every replica (docs/replicas.md)
    state_store: str = ""
    usage_db: str = "usage.sqlite"  # beside config.yaml unless absolute; "" = no usage history

    @field_validator("proxy_url")
    @classmethod
    def _proxy_scheme(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://", "socks5://", "socks5h://")):
            raise ValueError("must start with http://, https:// or socks5://")
        return value

    @field_validator("state_store")
    @classmethod
    def _state_store(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError('must be "" or a redis://HOST:PORT/DB URL (rediss://, unix:// too)')
        return value

    @field_validator("api_keys", "generative_language_api_key")
    @classmethod
    def _no_empty_keys(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("must not contain empty keys")
        return value

    @property
    def auth_path(self) -> Path:
        return Path(os.path.expanduser(self.auth_dir))


class SettingsError(Exception):
    """A config file that cannot be used; str() is one line naming the file, key and problem."""


def config_path(explicit: str | None = None) -> Path:
    """The config file to read: an explicit path, else $CLIPROXY_CONFIG, else ./config.yaml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def parse_settings(data: Any, source: str = DEFAULT_CONFIG) -> Settings:
    if data is None:
        # an emptied file (or one of comments only) is a mistake, most often a save caught
        # half-way: taking it as "all defaults" would drop api-keys and reset endpoints
        raise SettingsError(f"{source}: the file is empty (or only comments); no config in it")
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: the top level must be a mapping of keys")
    _kebab_only(data, "", source)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise SettingsError(f"{source}: {key}: {msg}") from None


# Sections whose keys are the user's own (model names), not settings.
_FREE_KEYS = frozenset({"model-aliases"})


def _kebab_only(data: dict, prefix: str, source: str) -> None:
    """Keys are kebab-case (docs/configuration.md "Keys"): a snake_case spelling is reported, not
    accepted."""
    for key, value in data.items():
        if isinstance(key, str) and "_" in key:
            hint = key.replace("_", "-")
            raise SettingsError(f"{source}: {prefix}{key}: unknown key (did you mean {hint}?)")
        if isinstance(value, dict) and key not in _FREE_KEYS:
            _kebab_only(value, f"{prefix}{key}.", source)


def load_settings(path: Path) -> Settings:
    """Read and validate `path`; a missing file means all defaults."""
    if not path.exists():
        return Settings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SettingsError(f"{path}: cannot be read as YAML: {first}") from None
    return parse_settings(data, str(path))
