"""`instore deploy render`: hostapd, dnsmasq and nftables files from the one config, each checked
by the program that will read it (hostapd's own parser, `dnsmasq --test`, `nft -c`).

hostapd has no "check the config" switch. It parses the whole file before it touches a radio, and
reports "N errors found in configuration file" when it refuses one; so the check runs it on the
file with a radio that does not exist and asserts it got past parsing (and a broken file proves
that the check can fail).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from instore.cli import main
from instore.config import DEFAULTS, Config, ConfigError, load_config
from instore.deploy_render import BOX_SETTINGS, RenderError, box_config, render, render_hostapd

CHECKOUT = Path(__file__).resolve().parents[1]
NO_SUCH_RADIO = "wlinstorenone0"  # hostapd must never find a real radio to start on
HOSTAPD_TIMEOUT_SECONDS = 20
BOX = {
    "INSTORE_PORTAL_BIND": "10.20.0.1:80",
    "INSTORE_PORTAL_PUBLIC_URL": "http://10.20.0.1",
    "INSTORE_WIFI_COUNTRY_CODE": "ES",
    "INSTORE_WIFI_INTERFACE": NO_SUCH_RADIO,
    "INSTORE_GATEWAY_WALLED_GARDEN": "203.0.113.7,pay.example.com",
}
SECURED = {"INSTORE_WIFI_PASSWORD": "correct horse battery"}


def box_config_with(**extra: str) -> Config:
    return load_config(environ={**BOX, **extra})


def hostapd_accepts(path: Path) -> tuple[bool, str]:
    result = subprocess.run(
        ["hostapd", "-dd", str(path)],
        capture_output=True,
        text=True,
        timeout=HOSTAPD_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    parsed = (
        f"Configuration file: {path}" in output and "errors found in configuration" not in output
    )
    return parsed, output


needs_hostapd = pytest.mark.skipif(
    shutil.which("hostapd") is None, reason="hostapd is not installed (Debian package hostapd)"
)


@needs_hostapd
@pytest.mark.parametrize(
    ("security", "channel"),
    [("open", "6"), ("wpa2", "1"), ("wpa3", "36"), ("wpa2-wpa3", "100")],
)
def test_hostapd_parses_every_security_mode(tmp_path: Path, security: str, channel: str) -> None:
    extra = {} if security == "open" else SECURED
    config = box_config_with(INSTORE_WIFI_SECURITY=security, INSTORE_WIFI_CHANNEL=channel, **extra)
    path = tmp_path / "hostapd.conf"
    path.write_text(render_hostapd(config))
    parsed, output = hostapd_accepts(path)
    assert parsed, output


@needs_hostapd
def test_the_hostapd_check_fails_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "hostapd.conf"
    path.write_text(render_hostapd(box_config_with()).replace("hw_mode=g", "hw_mode=z"))
    parsed, _ = hostapd_accepts(path)
    assert not parsed


def test_hostapd_lines_follow_the_config() -> None:
    open_text = render_hostapd(box_config_with())
    assert "ssid=Guest WiFi" in open_text and "wpa=0" in open_text
    assert "country_code=ES" in open_text and "bridge=br-guest" in open_text
    assert "hw_mode=g" in open_text and "ieee80211h=1" not in open_text
    dfs = render_hostapd(
        box_config_with(INSTORE_WIFI_SECURITY="wpa3", INSTORE_WIFI_CHANNEL="52", **SECURED)
    )
    assert "hw_mode=a" in dfs and "ieee80211h=1" in dfs
    assert "wpa_key_mgmt=SAE" in dfs and "ieee80211w=2" in dfs
    assert "sae_password=correct horse battery" in dfs and "wpa_passphrase" not in dfs
    # A radio that is the guest LAN itself is not bridged into anything.
    direct = render_hostapd(box_config_with(INSTORE_HARDWARE_LAN_INTERFACE=NO_SUCH_RADIO))
    assert "\nbridge=" not in direct


def test_hostapd_needs_a_country(tmp_path: Path) -> None:
    config = load_config(environ={**BOX, "INSTORE_WIFI_COUNTRY_CODE": ""})
    with pytest.raises(RenderError, match=r"wifi\.country_code is empty"):
        render_hostapd(config)


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq is not installed")
def test_dnsmasq_accepts_the_snippet(tmp_path: Path) -> None:
    path = tmp_path / "dnsmasq.conf"
    path.write_text(render(box_config_with(), "dnsmasq"))
    result = subprocess.run(
        ["dnsmasq", "--test", "-C", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr
    path.write_text(path.read_text() + "dhcp-range=not-a-range\n")
    broken = subprocess.run(
        ["dnsmasq", "--test", "-C", str(path)], capture_output=True, check=False
    )
    assert broken.returncode != 0


@pytest.mark.skipif(
    shutil.which("nft") is None or os.geteuid() != 0, reason="nft -c needs nftables and root"
)
def test_nft_accepts_the_ruleset(tmp_path: Path) -> None:
    path = tmp_path / "instore.nft"
    path.write_text(render(box_config_with(), "nftables"))
    result = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def run_cli(tmp_path: Path, *args: str, **env: str) -> Any:
    config = tmp_path / "instore.toml"
    if not config.exists():
        config.write_text(
            '[portal]\nbind = "10.20.0.1:80"\npublic_url = "http://10.20.0.1"\n'
            '[wifi]\ncountry_code = "DE"\nsecurity = "wpa2"\npassword = "twelve chars"\n'
        )
    return CliRunner().invoke(main, ["--config", str(config), *args], env=env)


def test_render_all_writes_three_files_and_keeps_the_password_private(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(tmp_path, "deploy", "render", "all", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["dnsmasq.conf", "hostapd.conf", "instore.nft"]
    assert stat.S_IMODE((out / "hostapd.conf").stat().st_mode) == 0o600
    assert "wpa_passphrase=twelve chars" in (out / "hostapd.conf").read_text()
    assert "/etc/hostapd/hostapd.conf" in result.output


def test_render_prints_one_file(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "deploy", "render", "dnsmasq")
    assert result.exit_code == 0
    assert 'dhcp-option=114,"http://10.20.0.1/api/captive"' in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["all"], {}, "'all' writes several files: add --out DIR"),
        (["hostapd"], {"INSTORE_WIFI_COUNTRY_CODE": ""}, "wifi.country_code is empty"),
        (["nftables"], {"INSTORE_PORTAL_BIND": "127.0.0.1:8080"}, "portal.bind is"),
    ],
)
def test_render_mistakes_exit_2_with_a_sentence(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_cli(tmp_path, "deploy", "render", *args, **env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_nothing_is_written_when_one_file_cannot_be_rendered(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        tmp_path, "deploy", "render", "all", "--out", str(out), INSTORE_WIFI_COUNTRY_CODE=""
    )
    assert result.exit_code == 2
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INSTORE_WIFI_SECURITY": "wep"}, "wifi.security: must be one of"),
        ({"INSTORE_WIFI_SECURITY": "wpa2"}, "needs a password of 8 to 63"),
        (
            {"INSTORE_WIFI_SECURITY": "wpa2", "INSTORE_WIFI_PASSWORD": "short"},
            "needs a password of 8 to 63",
        ),
        ({"INSTORE_WIFI_PASSWORD": "whatever12"}, "security = 'open' would ignore it"),
        ({"INSTORE_WIFI_CHANNEL": "37"}, "wifi.channel: 37 is not"),
        ({"INSTORE_WIFI_COUNTRY_CODE": "Spain"}, "two-letter ISO 3166 code"),
        ({"INSTORE_WIFI_SSID": "x" * 33}, "wifi.ssid: must be 1 to 32 bytes"),
        ({"INSTORE_WIFI_SSID": "Guest\nwpa=0"}, "without control characters"),
        ({"INSTORE_WIFI_INTERFACE": "wlan 0"}, "wifi.interface"),
    ],
)
def test_wifi_settings_are_checked_when_the_config_loads(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(environ=env)


def test_the_box_config_loads_and_sets_only_the_box_settings(tmp_path: Path) -> None:
    path = tmp_path / "instore.toml"
    path.write_text(box_config())
    config = load_config(path, environ={})
    for (section, key), value in BOX_SETTINGS.items():
        assert config[section][key] == value
    set_keys = {
        (section, key)
        for section, values in tomllib.loads(path.read_text()).items()
        for key in values
    }
    assert set_keys == set(BOX_SETTINGS)
    assert all(key in DEFAULTS["wifi"] for key in ("ssid", "country_code", "security"))


def test_the_box_config_refuses_an_example_without_its_keys() -> None:
    with pytest.raises(RenderError, match=r"database\.path"):
        box_config("[database]\n# busy_timeout_ms = 5000\n")


def test_config_template_command_prints_the_box_config() -> None:
    result = CliRunner().invoke(main, ["deploy", "config-template"])
    assert result.exit_code == 0
    assert result.output == box_config()
