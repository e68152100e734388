"""The checks ``instore doctor`` runs, one small function each.

Every check takes what it looks at as arguments (a path, a sysfs root, a command runner, a BlueZ
query), so tests run it against real temporary files, the real ``/sys``, real ``nft`` in a
network namespace, a mocked bluetoothd on a private D-Bus, and captured ``iw`` output for the
radios the test machines lack. Each returns ``CheckResult``s: a verdict and, for anything not ok,
one sentence saying what to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from hardware.doctor_radios import BluezAnswer, parse_iw_phys
from instore.health import schema_state

OK, WARN, FAIL = "ok", "warn", "FAIL"
# A command that has not answered in this long is hung (a D-Bus timeout inside systemctl is 25 s).
COMMAND_TIMEOUT_SECONDS = 10.0
# Free space on the database's filesystem. SQLite needs room for its WAL and for VACUUM, and an
# upgrade migrates a copy of the database beside the original: below a gigabyte a busy store is
# days from a failed write; below 200 MB, hours.
DISK_WARN_BYTES = 1024**3
DISK_FAIL_BYTES = 200 * 1024**2
# ...and at least twice the database's size, so the upgrade's copy and its WAL both fit.
DISK_DATABASE_COPIES = 2
# /sys/class/net/IF/type of interfaces that deliver 802.11 frames: monitor mode (radiotap) and
# the older raw 802.11 / Prism headers.
MONITOR_ARPHRD = {801, 802, 803}
IFF_UP = 0x1
# adjtimex(2) returns TIME_ERROR when the kernel clock is not synchronised.
TIME_ERROR = 5


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's table."""

    name: str
    verdict: str  # ok, warn or FAIL
    detail: str  # what was found
    advice: str = ""  # what to do about it; empty when ok

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def missing(self) -> bool:
        """The program is not installed."""
        return self.returncode == 127 and not self.stdout

    def first_error_line(self) -> str:
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[0] if lines else f"exit status {self.returncode}"


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str]) -> CommandResult:
    """Run ``argv`` with a deadline; a missing program is exit 127 like a shell says it."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, "LC_ALL": "C"},  # parse English output whatever the locale
        )
    except FileNotFoundError:
        return CommandResult(127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]}: no answer in {COMMAND_TIMEOUT_SECONDS:g} s")
    return CommandResult(done.returncode, done.stdout, done.stderr)


# -- the database ---------------------------------------------------------------------------
def check_database(path: Path, busy_timeout_ms: int) -> CheckResult:
    """The file opens, this user can take the write lock, and the schema is this release's.

    Opened without creating: the doctor must not leave an empty database where a missing one
    is the problem.
    """
    if not path.exists():
        return CheckResult(
            "database",
            FAIL,
            f"no database at {path}",
            "start a service (it creates one) or run `instore db upgrade`; "
            "check database.path if one should be there",
        )
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None
        )
    except sqlite3.Error as exc:
        return CheckResult(
            "database",
            FAIL,
            f"{path} cannot be opened for writing: {exc}",
            "run the doctor as the instore user (`sudo -u instore instore doctor`) or fix the "
            "file's owner (`chown instore: FILE`)",
        )
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock, then nothing written
        conn.execute("ROLLBACK")
        state = schema_state(sqlite_utils.Database(conn))
    except sqlite3.Error as exc:
        return CheckResult(
            "database",
            FAIL,
            f"{path}: {exc}",
            "if it is locked, find the stuck process (`fuser FILE`); if it is damaged, restore "
            "a backup (`instore restore FILE`)",
        )
    finally:
        conn.close()
    if state.verdict != "current":
        return CheckResult("database", FAIL, state.describe(), state.advice())
    versions = ", ".join(f"{p} {v}" for p, v in sorted(state.current.items()))
    return CheckResult("database", OK, f"{path} is writable, schema current ({versions})")


# -- the firewall ---------------------------------------------------------------------------
def check_nftables(backend: str, runner: Runner, is_root: bool) -> CheckResult:
    """The gatekeeper's table ``inet instore`` is loaded (only when nftables is the backend)."""
    if backend != "nftables":
        return CheckResult("nftables", OK, f"not used (gateway.backend = {backend!r})")
    if not is_root:
        return CheckResult(
            "nftables",
            WARN,
            "not checked: reading the firewall needs root",
            "run `sudo instore doctor` to check the firewall too",
        )
    result = runner(["nft", "list", "table", "inet", "instore"])
    if result.missing:
        return CheckResult(
            "nftables", FAIL, "nft is not installed", "install it: `apt install nftables`"
        )
    if result.returncode != 0:
        return CheckResult(
            "nftables",
            FAIL,
            f"table inet instore is missing ({result.first_error_line()})",
            "start the gatekeeper, which loads it: `systemctl restart instore-gatekeeper`",
        )
    return CheckResult("nftables", OK, "table inet instore is loaded")


# -- interfaces -----------------------------------------------------------------------------
def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def check_lan_interface(name: str, sys_net: Path, used: bool = True) -> CheckResult:
    """The guest LAN interface exists and is up (``/sys/class/net/IF/operstate``).

    ``used`` is False off a box (the in-memory gateway and demo client lookup): nothing then
    reads the interface.
    """
    if not used:
        return CheckResult("lan interface", OK, "not used (no nftables gateway, demo lookup)")
    if not name:
        return CheckResult(
            "lan interface", WARN, "hardware.lan_interface is empty", "set it in the config file"
        )
    device = sys_net / name
    if not device.exists():
        return CheckResult(
            "lan interface",
            FAIL,
            f"no interface {name}",
            "create it (the guest bridge, see deploy/README.md) or set hardware.lan_interface",
        )
    state = _read(device / "operstate")
    if state == "up":
        return CheckResult("lan interface", OK, f"{name} is up")
    flags = _read(device / "flags")
    if state == "unknown" and flags and int(flags, 16) & IFF_UP:
        # Bridges without carrier reporting, tun and loopback say "unknown" while working.
        return CheckResult("lan interface", OK, f"{name} is administratively up")
    return CheckResult(
        "lan interface",
        FAIL,
        f"{name} is {state or 'in an unknown state'}",
        f"bring it up (`ip link set {name} up`); for a bridge, check hostapd and the cable",
    )


def check_wifi_monitor(
    sources: Sequence[str], interface: str, sys_net: Path, runner: Runner
) -> CheckResult:
    """The configured WiFi interface is in monitor mode, or its radio can be put in it."""
    if "wifi" not in sources:
        return CheckResult("wifi monitor mode", OK, "not used (presence.sources has no wifi)")
    device = sys_net / interface
    if device.exists():
        kind = _read(device / "type")
        if kind.isdigit() and int(kind) in MONITOR_ARPHRD:
            return CheckResult("wifi monitor mode", OK, f"{interface} is in monitor mode")
        phy = _read(device / "phy80211" / "name")
        if not phy:
            return CheckResult(
                "wifi monitor mode",
                FAIL,
                f"{interface} is not a WiFi interface",
                "set presence.wifi_interface to the monitor interface of a WiFi radio",
            )
        command: list[str] = ["iw", "phy", phy, "info"]
    else:
        command = ["iw", "list"]
    result = runner(command)
    if result.missing:
        # Only the advice needs iw: an interface missing or not in monitor mode fails either way.
        found = (
            f"{interface} is not in monitor mode"
            if device.exists()
            else f"no interface {interface}"
        )
        return CheckResult(
            "wifi monitor mode",
            FAIL,
            f"{found}, and iw is not installed to tell which radio can do monitor mode",
            "install iw (`apt install iw`) and run the doctor again for the fix",
        )
    phys = parse_iw_phys(result.stdout) if result.returncode == 0 else []
    able = [phy.name for phy in phys if phy.monitor]
    if device.exists():
        if able:
            return CheckResult(
                "wifi monitor mode",
                FAIL,
                f"{interface} is not in monitor mode, but its radio {able[0]} supports it",
                f"`ip link set {interface} down && iw dev {interface} set type monitor && "
                f"ip link set {interface} up`",
            )
        return CheckResult(
            "wifi monitor mode",
            FAIL,
            f"the radio of {interface} cannot do monitor mode",
            "use a USB WiFi adapter whose driver supports monitor mode (see deploy/README.md)",
        )
    if able:
        return CheckResult(
            "wifi monitor mode",
            FAIL,
            f"no interface {interface}; radio {able[0]} supports monitor mode",
            f"create it: `iw phy {able[0]} interface add {interface} type monitor`",
        )
    found = ", ".join(phy.name for phy in phys) or "none found"
    return CheckResult(
        "wifi monitor mode",
        FAIL,
        f"no interface {interface}, and no radio here can do monitor mode ({found})",
        "plug in a USB WiFi adapter whose driver supports monitor mode",
    )


def check_bluetooth(
    sources: Sequence[str],
    adapter: str,
    query: Callable[[], BluezAnswer],
    sys_bluetooth: Path,
) -> CheckResult:
    """BlueZ has the adapter and it is powered (asked over D-Bus, as the BLE source does)."""
    if "ble" not in sources:
        return CheckResult("bluetooth", OK, "not used (presence.sources has no ble)")
    answer = query()
    if answer.error == "bluez":
        in_kernel = sorted(p.name for p in sys_bluetooth.glob("hci*"))
        seen = f" (the kernel has {', '.join(in_kernel)})" if in_kernel else ""
        return CheckResult(
            "bluetooth",
            FAIL,
            f"bluetoothd is not running{seen}",
            "start it: `systemctl enable --now bluetooth`",
        )
    if answer.error.startswith("bus"):
        return CheckResult(
            "bluetooth",
            FAIL,
            "no system D-Bus, so BlueZ cannot be reached",
            "install and start dbus and bluez: `apt install bluez`",
        )
    if answer.error:
        return CheckResult(
            "bluetooth", WARN, f"BlueZ did not answer: {answer.error}", "check `bluetoothctl list`"
        )
    if not answer.adapters:
        return CheckResult(
            "bluetooth",
            FAIL,
            "no Bluetooth adapter",
            "plug one in or enable the built-in one; see `rfkill list` and `dmesg | grep -i blue`",
        )
    name = adapter or sorted(answer.adapters)[0]
    if name not in answer.adapters:
        known = ", ".join(sorted(answer.adapters))
        return CheckResult(
            "bluetooth",
            FAIL,
            f"no adapter {name} (BlueZ has {known})",
            "set presence.ble_adapter to one of those, or leave it empty for the default",
        )
    if not answer.adapters[name]:
        return CheckResult(
            "bluetooth",
            FAIL,
            f"{name} is powered off",
            "`bluetoothctl power on` (and `rfkill unblock bluetooth` if it is blocked)",
        )
    return CheckResult("bluetooth", OK, f"{name} is present and powered")


# -- time, disk, services -------------------------------------------------------------------
def kernel_clock_synchronised() -> bool | None:
    """The kernel's own view (adjtimex, read-only): None if it cannot be asked."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    buffer = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
    state = libc.adjtimex(buffer)
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


def check_time_sync(runner: Runner, kernel: Callable[[], bool | None]) -> CheckResult:
    """The clock is NTP-synchronised: offers' schedules, sessions and TLS all depend on it."""
    advice = "enable NTP: `timedatectl set-ntp true` (or install chrony) and allow UDP 123 out"
    answer = runner(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if answer.returncode == 0 and answer.stdout.strip() in {"yes", "no"}:
        if answer.stdout.strip() == "yes":
            return CheckResult("time sync", OK, "synchronised (timedatectl)")
        return CheckResult("time sync", FAIL, "not synchronised (timedatectl)", advice)
    chrony = runner(["chronyc", "-n", "tracking"])
    if chrony.returncode == 0 and "Leap status" in chrony.stdout:
        if "Not synchronised" in chrony.stdout:
            return CheckResult("time sync", FAIL, "not synchronised (chrony)", advice)
        return CheckResult("time sync", OK, "synchronised (chrony)")
    synced = kernel()
    if synced:
        return CheckResult("time sync", OK, "synchronised (kernel clock status)")
    if synced is None:
        return CheckResult("time sync", WARN, "unknown: nothing here can tell", advice)
    return CheckResult(
        "time sync",
        WARN,
        "the kernel says the clock is not synchronised, and no NTP client answered",
        advice,
    )


def _size(number: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit != "GB" else f"{number:.1f} GB"
        number /= 1024
    raise AssertionError("unreachable")


def check_disk(database_path: Path) -> CheckResult:
    """Free space on the database's filesystem, against fixed floors and the database's size."""
    where = database_path.parent if database_path.parent.exists() else Path(".")
    usage = shutil.disk_usage(where)
    db_bytes = sum(
        Path(f"{database_path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{database_path}{suffix}").exists()
    )
    detail = f"{_size(usage.free)} free on {where} (database {_size(db_bytes)})"
    if usage.free < DISK_FAIL_BYTES:
        return CheckResult(
            "disk space",
            FAIL,
            detail,
            "free space now (old releases in /opt/instore/releases, journal: "
            "`journalctl --vacuum-size=100M`) or writes will start failing",
        )
    if usage.free < DISK_WARN_BYTES or usage.free < DISK_DATABASE_COPIES * db_bytes:
        return CheckResult(
            "disk space",
            WARN,
            detail,
            "free some space: an upgrade needs room for a copy of the database",
        )
    return CheckResult("disk space", OK, detail)


def systemd_running(run_root: Path = Path("/run")) -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return (run_root / "systemd" / "system").is_dir()


def check_services(runner: Runner, systemd: bool) -> list[CheckResult]:
    """Every installed instore unit that is enabled is active."""
    if not systemd:
        return [
            CheckResult(
                "services",
                WARN,
                "systemd is not PID 1 here, so units cannot be checked",
                "run the services under your own supervisor and see `instore status`",
            )
        ]
    listing = runner(
        ["systemctl", "list-unit-files", "--no-legend", "--plain", "--type=service", "instore-*"]
    )
    units: list[tuple[str, str]] = []
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(".service") and "@" not in parts[0]:
            units.append((parts[0], parts[1]))
    if not units:
        return [
            CheckResult(
                "services",
                WARN,
                "no instore units are installed",
                "install them: `deploy/install.sh` (see deploy/README.md)",
            )
        ]
    results = []
    for unit, enabled in units:
        name = f"service {unit.removesuffix('.service')}"
        state = runner(["systemctl", "is-active", unit]).stdout.strip() or "unknown"
        if state == "active":
            results.append(CheckResult(name, OK, f"active ({enabled})"))
        elif enabled not in {"enabled", "enabled-runtime", "static"} and state == "inactive":
            results.append(CheckResult(name, OK, f"not started ({enabled})"))
        elif state in {"activating", "reloading"}:
            results.append(
                CheckResult(name, WARN, state, f"check again in a minute; `journalctl -u {unit}`")
            )
        else:
            results.append(
                CheckResult(
                    name,
                    FAIL,
                    f"{state} ({enabled})",
                    f"see why: `journalctl -u {unit} -n 50`, then `systemctl restart {unit}`",
                )
            )
    return results


def as_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    """The ``--json`` shape: overall ok plus every line."""
    return {
        "ok": not any(r.verdict == FAIL for r in results),
        "checks": [r.as_dict() for r in results],
    }
