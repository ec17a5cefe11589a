from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cliproxy.addons.settings import Settings
from cliproxy.addons.settings import SettingsError
from cliproxy.addons.settings import config_path
from cliproxy.addons.settings import load_settings
from cliproxy.addons.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_yaml_equals_the_defaults() -> None:
    # config.yaml documents every key with its default: it must parse to exactly Settings()
    assert load_settings(ROOT / "config.yaml") == Settings()


def test_shipped_config_yaml_names_every_key() -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    dumped = Settings().model_dump(by_alias=True)
    assert set(data) == set(dumped)
    assert set(data["endpoints"]) == set(dumped["endpoints"])
    assert set(data["quota-exceeded"]) == set(dumped["quota-exceeded"])


def test_defaults() -> None:
    s = parse_settings({})
    assert (s.host, s.port, s.auth_dir, s.request_retry) == ("", 8317, "~/.cli-proxy-api", 3)
    assert s.api_keys == [] and s.model_aliases == {}
    assert s.quota_exceeded.switch_project is True
    assert s.endpoints.gemini_cli == "https://cloudcode-pa.googleapis.com"
    assert s.auth_path == Path.home() / ".cli-proxy-api"


def test_kebab_keys_are_read() -> None:
    s = parse_settings(
        {
            "auth-dir": "/tmp/x",
            "api-keys": ["k1"],
            "model-aliases": {"claude-sonnet-4-5": "gemini-2.5-pro"},
            "quota-exceeded": {"switch-project": False},
            "endpoints": {"gemini-cli": "http://127.0.0.1:9/"},
        }
    )
    assert s.auth_dir == "/tmp/x" and s.api_keys == ["k1"]
    assert s.model_aliases == {"claude-sonnet-4-5": "gemini-2.5-pro"}
    assert s.quota_exceeded.switch_project is False
    assert s.endpoints.gemini_cli == "http://127.0.0.1:9"  # trailing slash dropped


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"port": "eighty"}, "port: Input should be a valid integer"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"endpoints": {"codex": "ftp://x"}}, "endpoints.codex: Value error, must be an http"),
        ({"quota-exceeded": {"switch": True}}, "quota-exceeded.switch: unknown key"),
        ({"api-keys": "k"}, "api-keys: Input should be a valid list"),
        ({"proxy-url": "gopher://x"}, "proxy-url: Value error, must start with"),
        ({"request_retry": 2}, "request_retry: unknown key (did you mean request-retry?)"),
        ({"endpoints": {"gemini_cli": "http://x"}}, "endpoints.gemini_cli: unknown key"),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_invalid_values_name_the_key(data: object, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(data, "cfg.yaml")
    assert str(err.value).startswith("cfg.yaml: ")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "nope.yaml") == Settings()


def test_broken_yaml_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("port: [1,\n")
    with pytest.raises(SettingsError) as err:
        load_settings(p)
    assert "\n" not in str(err.value) and str(p) in str(err.value)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPROXY_CONFIG", raising=False)
    assert config_path() == Path("config.yaml")
    monkeypatch.setenv("CLIPROXY_CONFIG", "/etc/c.yaml")
    assert config_path() == Path("/etc/c.yaml")
    assert config_path("/x.yaml") == Path("/x.yaml")
