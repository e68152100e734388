"""Configuration: working defaults, then a TOML file, then ``INSTORE_*`` environment overrides.

Why three layers: a developer runs ``make demo`` with no file at all, a box reads
``/etc/instore/instore.toml`` written by IT, and systemd units or tests tweak one value through the
environment without editing the file. Every key is declared once in ``DEFAULTS`` with its type, so a
typo in the file is an error with the file, the key and what is wrong, not a silently ignored line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from instore.wifi_settings import wifi_problem

ENV_PREFIX = "INSTORE_"
CONFIG_ENV = "INSTORE_CONFIG"
BOX_CONFIG_PATH = Path("/etc/instore/instore.toml")

# Every section and key the product reads, with its default. The default's type is the key's type.
DEFAULTS: dict[str, dict[str, Any]] = {
    "store": {
        # Short code printed in redemption codes; a till refuses another store's codes by it.
        "id": "S001",
        "name": "Demo Store",
        # ISO 4217 code; prices are shown in it, in the shopper's language ("55,50 €", "€55.50").
        "currency": "EUR",
        "timezone": "UTC",
        # Shown on the venue-info page (RFC 8908 venue-info-url).
        "address": "",
        "hours": "",
    },
    "database": {
        # Relative to the working directory, so a checkout keeps its data in var/.
        "path": "var/instore.db",
        # How long a writer waits for the lock before failing; the portal, gatekeeper, presence
        # and offers processes share one file.
        "busy_timeout_ms": 5000,
    },
    "portal": {
        "bind": "127.0.0.1:8080",
        # The URL phones are sent to. Its host is how the portal tells its own pages from
        # intercepted traffic for other hosts.
        "public_url": "http://127.0.0.1:8080",
        # RFC 8908 API URL announced by DHCP option 114. Android ignores an http one, so a box with
        # a real certificate sets an https URL here.
        "api_url": "",
        # Extra host names that reach the portal's own pages rather than the captive catch-all.
        "hostnames": ["localhost", "127.0.0.1"],
        # Signed cookies; generated and kept under var/ when left empty.
        "secret_key": "",
        "session_hours": 8,
        # A client unseen this long loses its session (the gatekeeper refreshes the deadline).
        "idle_minutes": 60,
        "terms_version": "2026-11",
        "workers": 2,
        # Each open store page holds a thread for its live feed (4 per process stay for probes
        # and pages; beyond that, pages poll every 20 s): 2 x 32 streams ~60 phones live.
        "threads": 32,
        # flask-limiter storage. "memory://" counts per worker process; point it at memcached or
        # redis on a box with many workers to share the counts.
        "ratelimit_storage": "memory://",
        "login_limit": "10 per minute;50 per hour",
        "signup_limit": "5 per minute;30 per hour",
        # Friend requests and blocks by email or loyalty number, per IP: room to add a group of
        # friends at once, too little to try addresses one after another to see who is a member.
        "friend_request_limit": "20 per minute;100 per hour",
        # Community writes (boards, comments, reviews, suggestions, profile, reports) per IP: a
        # second fence behind screening's per-member limits, for scripts trying many accounts.
        "community_post_limit": "30 per minute;300 per hour",
        # Picture uploads per IP: re-encoding a phone photo costs the box real CPU.
        "upload_limit": "10 per minute;60 per hour",
        # The demo's extra controls (e.g. "walk my phone to zone…"); never on a real box.
        "demo_controls": False,
    },
    "gateway": {
        # "memory" for the demo and tests, "nftables" on a box.
        "backend": "memory",
        # The portal wakes the gatekeeper through this datagram socket after a sign-in or
        # sign-out; the database stays the only carrier of state, the socket only says "look now".
        "nudge_socket": "var/gatekeeper.sock",
        # Full check against the firewall (drift, counters for idle) at least this often.
        "reconcile_seconds": 5,
        # Reachable before sign-in: IPs or CIDRs here, host names via dnsmasq's nftset= (deploy/).
        "walled_garden": [],
    },
    "hardware": {
        # How the portal learns a client's MAC from its IP: "demo" (derived from the IP, for the
        # demo and tests) or "neighbours" (kernel neighbour table, then dnsmasq leases).
        "client_lookup": "demo",
        "leases_file": "/var/lib/misc/dnsmasq.leases",
        "lan_interface": "br-guest",
        # Masquerade guest traffic leaving through this interface; empty when another router does.
        "wan_interface": "",
    },
    "presence": {
        # Which sources the daemon runs: "wifi", "ble", "sim" (the demo), "replay".
        "sources": [],
        # The sensor (row in `sensors`) this box's own radios are.
        "sensor_id": "wifi-1",
        "wifi_interface": "wlan0mon",
        # Probe requests come on every channel; hop the common 2.4 GHz ones by default.
        "wifi_channels": ["1", "6", "11"],
        "wifi_dwell_ms": 250,
        "wifi_hop": True,
        "ble_sensor_id": "ble-1",
        "ble_adapter": "",
        # HMAC key for the loyalty app's rotating BLE token; generated under var/ when empty.
        "token_key": "",
        "replay_file": "",
        "replay_speed": "max",
        # Sightings are stored as one averaged row per device, sensor and this many seconds.
        "sighting_seconds": 10,
        "retention_days": 30,
        "dwell_seconds": 60,
        "zone_exit_seconds": 45,
        "store_exit_seconds": 180,
        "sim_shoppers": 25,
        # How much faster than real time the simulated shoppers walk (the demo uses 1).
        "sim_speed": 1,
        "sim_seed": 0,
    },
    "offers": {
        # At most one push per member this often, across every offer (issue: "global caps").
        "global_cooldown_seconds": 900,
        # Friend-in-store: the same pair of friends is noted at most once this often.
        "friend_cooldown_seconds": 3600,
        # Friend notes respect these store-local quiet hours ("HH:MM-HH:MM"; empty: none).
        "friend_quiet_hours": "",
        # A sent offer's code can be redeemed this long after it was sent.
        "code_valid_hours": 72,
        # A redemption or purchase counts towards an offer's lift this long after the decision.
        "attribution_hours": 168,
        # How often the worker asks SQLite whether anything committed (PRAGMA data_version, a
        # cheap read): the biggest part of the zone event -> phone delay budget of 500 ms.
        "poll_ms": 100,
        # Web Push: the contact push services may use if our pushes misbehave (RFC 8292 "sub").
        "vapid_subject": "mailto:it@example.com",
        # Till requests per minute per API key; a till scans a few codes a minute at most.
        "till_limit": "60 per minute",
    },
    "community": {
        # The support inbox shows threads whose member has waited longer than this first.
        "support_target_minutes": 60,
        # This many members' flags hide an item until a moderator decides (Discourse hides at 3).
        "flags_to_hide": 3,
        # The machine score (percent, alt-profanity-check) at which text goes to review before it
        # shows. Review, not refusal: the model is wrong often enough that a person decides.
        "machine_hold_percent": 80,
        # Members younger than this many days post at most new_member_posts_per_minute and may
        # not post links (the usual shape of spam accounts).
        "new_member_days": 3,
        "new_member_posts_per_minute": 3,
        "new_member_links": 0,
    },
    "logging": {
        "level": "INFO",
    },
    "wifi": {
        # The guest access point `instore deploy render hostapd` describes (deploy/hostapd/).
        "ssid": "Guest WiFi",
        # ISO 3166-1 alpha-2; sets the legal channels and power. Empty: hostapd is not rendered.
        "country_code": "",
        "channel": 6,
        # The radio hostapd runs the AP on; bridged into [hardware] lan_interface when different.
        "interface": "wlan0",
        # "open" (the captive portal is the sign-in), "wpa2", "wpa3" or "wpa2-wpa3" (transition).
        "security": "open",
        # The network password for wpa2/wpa3 (8 to 63 characters); never shown by `instore config`.
        "password": "",
    },
    "uplink": {
        # A chain's boxes publish their outbox to headquarters' MQTT broker (`instore uplink run`).
        "enabled": False,
        "host": "",
        # 8883 is MQTT over TLS (IANA); a plain-TCP broker on a trusted network uses 1883.
        "port": 8883,
        "tls": True,
        # CA bundle the broker's certificate is checked against; empty: the system's CAs.
        "ca_file": "",
        # A client certificate and its key (PEM), when the broker authenticates boxes by them.
        "cert_file": "",
        "key_file": "",
        "username": "",
        "password": "",
        # This store's topic level: <topic_prefix>/<store_id>/…; empty: [store] id.
        "store_id": "",
        "topic_prefix": "instore",
        # Events published and not yet acknowledged at once (MQTT's in-flight window). The
        # database is the buffer; this bounds memory and what a reconnect sends twice.
        "batch_size": 100,
        # The broker declares the box offline after 1.5 x this without a packet (MQTT 3.1.1).
        "keepalive_seconds": 60,
        # Waits between connection attempts double from min to max, so a chain's boxes do not
        # all hammer a broker that has just come back.
        "reconnect_min_seconds": 1,
        "reconnect_max_seconds": 60,
    },
}


# Settings whose values are never printed or shown in the console (present or not is enough).
SECRET_MARKERS: tuple[str, ...] = ("secret", "password", "private")


def shown_value(key: str, value: Any) -> Any:
    """``value`` as ``instore config`` and the console show it: secrets as "(hidden)"."""
    if value and any(marker in key for marker in SECRET_MARKERS):
        return "(hidden)"
    return value


class ConfigError(Exception):
    """A configuration problem a person can fix; the message names the file and key."""


@dataclass(frozen=True)
class Config:
    """Validated settings, one mapping per section, plus where they came from."""

    sections: Mapping[str, Mapping[str, Any]]
    source: str = "defaults"
    overrides: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.sections[section]

    def get(self, section: str, key: str) -> Any:
        return self.sections[section][key]

    @property
    def database_path(self) -> Path:
        return Path(self.sections["database"]["path"])

    @property
    def var_dir(self) -> Path:
        """Where state beside the database lives (generated secrets, keys)."""
        return self.database_path.parent

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dict(values) for name, values in self.sections.items()}


def _type_name(value: Any) -> str:
    return {bool: "true or false", int: "an integer", str: "a string", list: "a list of strings"}[
        type(value)
    ]


def _check_value(where: str, key: str, default: Any, value: Any) -> Any:
    """Return ``value`` if it has the default's type, else raise a ConfigError naming the key."""
    expected = type(default)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is list and ok:
        ok = all(isinstance(item, str) for item in value)
    if not ok:
        raise ConfigError(f"{where}: {key}: expected {_type_name(default)}, got {value!r}")
    if expected is int and value < 0:
        raise ConfigError(f"{where}: {key}: must not be negative, got {value}")
    return value


def _parse_env_value(where: str, key: str, default: Any, raw: str) -> Any:
    """Environment values are strings; convert them to the key's type."""
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where}: {key}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return _check_value(where, key, default, int(raw))
        except ValueError:
            raise ConfigError(f"{where}: {key}: expected an integer, got {raw!r}") from None
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _merge_file(sections: dict[str, dict[str, Any]], path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, values in data.items():
        if section not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise ConfigError(f"{path}: [{section}]: unknown section (known: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section}: expected a [{section}] table")
        for key, value in values.items():
            name = f"{section}.{key}"
            if key not in DEFAULTS[section]:
                known = ", ".join(sorted(DEFAULTS[section]))
                raise ConfigError(f"{path}: {name}: unknown key (known in [{section}]: {known})")
            sections[section][key] = _check_value(str(path), name, DEFAULTS[section][key], value)


def _env_overrides(
    sections: dict[str, dict[str, Any]], environ: Mapping[str, str]
) -> tuple[str, ...]:
    """Apply ``INSTORE_<SECTION>_<KEY>`` variables; return the names applied."""
    applied = []
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        for section, keys in DEFAULTS.items():
            if rest.startswith(section + "_") and rest[len(section) + 1 :] in keys:
                key = rest[len(section) + 1 :]
                sections[section][key] = _parse_env_value(
                    f"environment {var}", f"{section}.{key}", keys[key], raw
                )
                applied.append(var)
                break
        else:
            raise ConfigError(
                f"environment {var}: unknown setting (use INSTORE_<SECTION>_<KEY>, "
                f"e.g. INSTORE_PORTAL_BIND)"
            )
    return tuple(sorted(applied))


def _validate(sections: dict[str, dict[str, Any]], where: str) -> None:
    """Cross-field checks that types alone cannot express."""
    for key in ("public_url", "api_url"):
        url = sections["portal"][key]
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: portal.{key}: must start with http:// or https://")
    if sections["portal"]["session_hours"] < 1:
        raise ConfigError(f"{where}: portal.session_hours: must be at least 1")
    if sections["hardware"]["client_lookup"] not in {"demo", "neighbours"}:
        raise ConfigError(f"{where}: hardware.client_lookup: must be 'demo' or 'neighbours'")
    try:
        ZoneInfo(sections["store"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: store.timezone: unknown time zone {sections['store']['timezone']!r} "
            "(use an IANA name like 'Europe/Madrid')"
        ) from None
    currency = sections["store"]["currency"]
    if not (len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise ConfigError(
            f"{where}: store.currency: expected a three-letter ISO 4217 code like 'EUR', "
            f"got {currency!r}"
        )
    community = sections["community"]
    if community["support_target_minutes"] < 1:
        raise ConfigError(f"{where}: community.support_target_minutes: must be at least 1")
    if community["flags_to_hide"] < 1:
        raise ConfigError(f"{where}: community.flags_to_hide: must be at least 1")
    if not 0 < community["machine_hold_percent"] <= 100:
        raise ConfigError(f"{where}: community.machine_hold_percent: must be 1 to 100")
    for key in ("new_member_days", "new_member_posts_per_minute", "new_member_links"):
        if community[key] < 0:
            raise ConfigError(f"{where}: community.{key}: must be 0 or more")
    bind = sections["portal"]["bind"]
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{where}: portal.bind: expected HOST:PORT, got {bind!r}")
    _validate_uplink(sections["uplink"], sections["store"]["id"], where)
    wifi_mistake = wifi_problem(sections["wifi"])
    if wifi_mistake:
        raise ConfigError(f"{where}: {wifi_mistake}")


# MQTT topic levels may not hold these (wildcards and the level separator), nor be empty.
_TOPIC_FORBIDDEN = ("+", "#", "\0")


def _is_topic_level(text: str) -> bool:
    return bool(text) and "/" not in text and not any(c in text for c in _TOPIC_FORBIDDEN)


def _validate_uplink(uplink: Mapping[str, Any], store_code: str, where: str) -> None:
    """The uplink's settings: a host when enabled, usable ports and windows, clean topic levels."""
    if uplink["enabled"] and not uplink["host"]:
        raise ConfigError(f"{where}: uplink.host: required when uplink.enabled = true")
    if not 1 <= uplink["port"] <= 65535:
        raise ConfigError(f"{where}: uplink.port: must be 1 to 65535")
    # MQTT message ids are 16 bits, so at most 65535 messages can be in flight at once.
    if not 1 <= uplink["batch_size"] <= 65535:
        raise ConfigError(f"{where}: uplink.batch_size: must be 1 to 65535")
    if not 5 <= uplink["keepalive_seconds"] <= 65535:
        raise ConfigError(f"{where}: uplink.keepalive_seconds: must be 5 to 65535")
    if not 1 <= uplink["reconnect_min_seconds"] <= uplink["reconnect_max_seconds"]:
        raise ConfigError(
            f"{where}: uplink.reconnect_min_seconds: must be at least 1 and at most "
            "uplink.reconnect_max_seconds"
        )
    if bool(uplink["cert_file"]) != bool(uplink["key_file"]):
        raise ConfigError(
            f"{where}: uplink.cert_file and uplink.key_file go together: give both or neither"
        )
    if not uplink["tls"] and (uplink["ca_file"] or uplink["cert_file"]):
        raise ConfigError(
            f"{where}: uplink.ca_file/cert_file are set but uplink.tls = false; "
            "set tls = true or remove them"
        )
    if uplink["password"] and not uplink["username"]:
        raise ConfigError(f"{where}: uplink.password: set uplink.username too")
    store_id = uplink["store_id"] or store_code
    if (uplink["enabled"] or uplink["store_id"]) and not _is_topic_level(store_id):
        key = "uplink.store_id" if uplink["store_id"] else "store.id (the uplink's store_id)"
        raise ConfigError(
            f"{where}: {key}: must be one MQTT topic level, not empty, without '/', '+' or '#', "
            f"got {store_id!r}"
        )
    prefix = uplink["topic_prefix"]
    if not all(_is_topic_level(level) for level in prefix.split("/")):
        raise ConfigError(
            f"{where}: uplink.topic_prefix: topic levels separated by '/', none empty, without "
            f"'+' or '#' (e.g. 'acme/instore'), got {prefix!r}"
        )


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration.

    ``path`` wins over ``INSTORE_CONFIG``; with neither, ``/etc/instore/instore.toml`` is read when
    it exists, else the defaults stand alone.
    """
    environ = os.environ if environ is None else environ
    sections = {name: dict(values) for name, values in DEFAULTS.items()}
    chosen = Path(path) if path else None
    if chosen is None and environ.get(CONFIG_ENV):
        chosen = Path(environ[CONFIG_ENV])
    if chosen is None and BOX_CONFIG_PATH.exists():
        chosen = BOX_CONFIG_PATH
    source = "defaults"
    if chosen is not None:
        _merge_file(sections, chosen)
        source = str(chosen)
    overrides = _env_overrides(sections, environ)
    _validate(sections, source if not overrides else f"{source} + environment")
    return Config(sections=sections, source=source, overrides=overrides)
