"""What a valid ``[wifi]`` section is: the guest access point ``instore deploy render hostapd``
writes a hostapd configuration for.

Kept apart from ``instore.config`` (which calls ``wifi_problem``) because the rules are radio
rules — legal channels, WPA passphrase lengths, interface names — and the renderer shares them.
Every value ends up on a line of a hostapd file, so anything that could break out of its line
(a newline in an SSID or a password) is refused here, not escaped later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECURITY_MODES = ("open", "wpa2", "wpa3", "wpa2-wpa3")
# 2.4 GHz channels 1-14 (14 is Japan only; the country code decides what is legal).
CHANNELS_2GHZ = frozenset(range(1, 15))
# 20 MHz 5 GHz channels in the UNII bands; hostapd and the regulatory database refuse the ones a
# country forbids, so this only catches typos like 37.
CHANNELS_5GHZ = frozenset(
    (36, 40, 44, 48, 52, 56, 60, 64, *range(100, 145, 4), 149, 153, 157, 161, 165, 169, 173, 177)
)
# Channels 52-144 need radar detection (DFS, 802.11h) in most countries.
DFS_CHANNELS = frozenset(ch for ch in CHANNELS_5GHZ if 52 <= ch <= 144)
SSID_MAX_BYTES = 32  # 802.11: an SSID is 0-32 octets
# WPA2-Personal passphrases are 8-63 ASCII characters (IEEE 802.11i, hostapd's wpa_passphrase).
PASSWORD_MIN = 8
PASSWORD_MAX = 63
IFNAME_MAX = 15  # Linux IFNAMSIZ - 1


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def band(channel: int) -> str:
    """hostapd's ``hw_mode``: ``g`` for 2.4 GHz channels, ``a`` for 5 GHz."""
    return "g" if channel in CHANNELS_2GHZ else "a"


def wifi_problem(wifi: Mapping[str, Any]) -> str | None:
    """The first mistake in a ``[wifi]`` section as a sentence naming the key, or None."""
    ssid = wifi["ssid"]
    if not ssid or len(ssid.encode()) > SSID_MAX_BYTES or _has_control(ssid):
        return (
            f"wifi.ssid: must be 1 to {SSID_MAX_BYTES} bytes without control characters, "
            f"got {ssid!r}"
        )
    country = wifi["country_code"]
    if country and not (len(country) == 2 and country.isascii() and country.isupper()):
        return f"wifi.country_code: expected a two-letter ISO 3166 code like 'ES', got {country!r}"
    channel = wifi["channel"]
    if channel not in CHANNELS_2GHZ and channel not in CHANNELS_5GHZ:
        return (
            f"wifi.channel: {channel} is not a 2.4 GHz (1-14) or 20 MHz 5 GHz channel "
            "(36, 40, …, 165)"
        )
    interface = wifi["interface"]
    if (
        not interface
        or len(interface) > IFNAME_MAX
        or any(char.isspace() or char == "/" for char in interface)
    ):
        return (
            f"wifi.interface: expected a network interface name of 1 to {IFNAME_MAX} characters, "
            f"got {interface!r}"
        )
    security = wifi["security"]
    if security not in SECURITY_MODES:
        return f"wifi.security: must be one of {', '.join(SECURITY_MODES)}, got {security!r}"
    password = wifi["password"]
    if security == "open":
        if password:
            return (
                "wifi.password: is set but wifi.security = 'open' would ignore it; "
                "choose wpa2, wpa3 or wpa2-wpa3, or remove the password"
            )
        return None
    if not (
        PASSWORD_MIN <= len(password) <= PASSWORD_MAX
        and password.isascii()
        and not _has_control(password)
    ):
        return (
            f"wifi.password: wifi.security = {security!r} needs a password of {PASSWORD_MIN} "
            f"to {PASSWORD_MAX} printable ASCII characters"
        )
    return None
