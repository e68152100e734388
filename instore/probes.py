"""What each operating system's connectivity check expects to see when it is online.

Shared by the portal (which answers the checks) and the dnsmasq template (which must send the
check host names to the portal), so it lives in the kernel rather than in ``portal``.

Phones and laptops fetch one of these URLs right after joining a network. DNS on the box answers
the host names with the portal's address, so the request arrives here with the original ``Host``.
An authorized client gets exactly the answer below (so its OS says "connected"); anyone else gets
a redirect to the sign-in page (so its OS opens the captive-portal sheet).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProbeAnswer:
    """The online answer for one probe URL."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


APPLE_SUCCESS = ProbeAnswer(
    200,
    b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>\n",
    "text/html",
)
GOOGLE_204 = ProbeAnswer(204)
NM_ONLINE_HEADER = (("X-NetworkManager-Status", "online"),)
NM_ONLINE_TEXT = ProbeAnswer(200, b"NetworkManager is online\n", headers=NM_ONLINE_HEADER)

# (host, path) → online answer. Sources are the vendors' own endpoints and client code.
PROBES: dict[tuple[str, str], ProbeAnswer] = {
    # Apple iOS/macOS captive network assistant; body must contain "Success" in a <TITLE>/<BODY>.
    # Source: http://captive.apple.com/hotspot-detect.html as served by Apple.
    ("captive.apple.com", "/hotspot-detect.html"): APPLE_SUCCESS,
    ("captive.apple.com", "/"): APPLE_SUCCESS,
    # Older iOS releases probe these.
    ("www.apple.com", "/library/test/success.html"): APPLE_SUCCESS,
    ("captive.apple.com", "/library/test/success.html"): APPLE_SUCCESS,
    # Android and ChromeOS: HTTP 204 with an empty body means online (AOSP NetworkMonitor).
    ("connectivitycheck.gstatic.com", "/generate_204"): GOOGLE_204,
    ("www.gstatic.com", "/generate_204"): GOOGLE_204,
    ("clients3.google.com", "/generate_204"): GOOGLE_204,
    ("clients1.google.com", "/generate_204"): GOOGLE_204,
    ("connectivitycheck.android.com", "/generate_204"): GOOGLE_204,
    ("www.google.com", "/gen_204"): GOOGLE_204,
    # Windows NCSI: exact bodies, no trailing newline (Microsoft's captive-portal docs).
    ("www.msftconnecttest.com", "/connecttest.txt"): ProbeAnswer(200, b"Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt"): ProbeAnswer(200, b"Microsoft NCSI"),
    # Firefox: network.connectivity-service expects "success\n" (detectportal.firefox.com).
    ("detectportal.firefox.com", "/success.txt"): ProbeAnswer(200, b"success\n"),
    # Firefox captivedetect.canonicalContent, compared byte for byte.
    ("detectportal.firefox.com", "/canonical.html"): ProbeAnswer(
        200,
        b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>',
        "text/html",
    ),
    # NetworkManager: full connectivity when the X-NetworkManager-Status: online header is present
    # (nm-connectivity.c); bodies as each distribution's endpoint serves them.
    ("connectivity-check.ubuntu.com", "/"): ProbeAnswer(204, headers=NM_ONLINE_HEADER),
    ("nmcheck.gnome.org", "/check_network_status.txt"): NM_ONLINE_TEXT,
    ("ping.archlinux.org", "/nm-check.txt"): NM_ONLINE_TEXT,
    ("fedoraproject.org", "/static/hotspot.txt"): ProbeAnswer(
        200, b"OK\n", headers=NM_ONLINE_HEADER
    ),
}


# Every host name above: DNS on the box must answer these with the portal's address.
PROBE_HOSTS: tuple[str, ...] = tuple(sorted({host for host, _ in PROBES}))


def probe_answer(host: str, path: str) -> ProbeAnswer | None:
    """The online answer if (host, path) is a known connectivity check."""
    return PROBES.get((host, path))
