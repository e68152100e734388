"""``instore doctor``: each check against real files, the real /sys, real nft and a bridge in a
network namespace, a mocked bluetoothd on a private D-Bus, and captured output of the tools and
radios this machine lacks (tests/fixtures/doctor/README.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from hardware import doctor_checks as checks
from hardware.doctor import DoctorInputs, run_checks
from hardware.doctor_checks import FAIL, OK, WARN, CommandResult
from hardware.doctor_radios import BluezAnswer, bluez_adapters, parse_iw_phys
from instore.cli import main
from instore.config import Config
from instore.db import open_database
from instore.health import latest_versions
from tests.netns_procs import skip_reason

FIXTURES = Path(__file__).parent / "fixtures" / "doctor"
POLL_SECONDS = 10.0


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


class Captured:
    """A runner answering with captured output for the commands a test names, and saying what
    it was asked; anything else is a program that is not installed."""

    def __init__(self, answers: dict[tuple[str, ...], CommandResult]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.asked.append(tuple(argv))
        return self.answers.get(tuple(argv), CommandResult(127, "", f"{argv[0]}: not found"))


def said(text: str) -> CommandResult:
    return CommandResult(0, text, "")


# -- iw output --------------------------------------------------------------------------------
def test_iw_parser_reads_real_captures() -> None:
    (realtek,) = parse_iw_phys(fixture("iw_list_rtl8812ae.txt"))
    assert realtek.name == "phy0" and realtek.monitor
    assert {"managed", "AP", "monitor"} <= realtek.modes
    assert realtek.software_modes == {"AP/VLAN", "monitor"}
    (broadcom,) = parse_iw_phys(fixture("iw_list_brcmfmac.txt"))
    assert broadcom.name == "phy3" and not broadcom.monitor
    assert broadcom.modes == {"IBSS", "managed", "AP", "P2P-client", "P2P-GO", "P2P-device"}
    assert broadcom.software_modes == set()


def test_iw_parser_reads_captures_pasted_with_spaces() -> None:
    """Bug reports lose iw's tabs; the parser reads eight spaces the same way."""
    text = fixture("iw_list_rtl8812ae.txt") + fixture("iw_list_brcmfmac.txt")
    phys = parse_iw_phys(text.expandtabs(8))
    assert [(p.name, p.monitor) for p in phys] == [("phy0", True), ("phy3", False)]


# -- config -----------------------------------------------------------------------------------
def test_a_bad_config_is_a_fail_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "instore.toml"
    path.write_text('[portal]\nbindd = "0.0.0.0:80"\n')
    results = run_checks(str(path), DoctorInputs(runner=Captured({})))
    config, *rest = results
    assert config.verdict == FAIL and "portal.bindd: unknown key" in config.detail
    assert "deploy/instore.toml.example" in config.advice
    skipped = {r.name for r in rest if r.detail == "not checked: the config is invalid"}
    assert {"database", "nftables", "lan interface", "bluetooth"} <= skipped


# -- database ---------------------------------------------------------------------------------
def test_database_current_and_writable(db: sqlite_utils.Database, config: Config) -> None:
    result = checks.check_database(config.database_path, 1000)
    assert result.verdict == OK and "schema current" in result.detail


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "instore.db"
    result = checks.check_database(path, 1000)
    assert result.verdict == FAIL and "no database" in result.detail
    assert not path.exists()


def test_a_database_behind_this_release(db: sqlite_utils.Database, config: Config) -> None:
    latest = latest_versions()["offers"]
    db.conn.execute(
        "DELETE FROM schema_migrations WHERE package = 'offers' AND version = ?", (latest,)
    )
    result = checks.check_database(config.database_path, 1000)
    assert result.verdict == FAIL
    assert f"offers {latest - 1} of {latest}" in result.detail
    assert result.advice == "run `instore db upgrade`"


def test_a_database_locked_by_another_writer(db: sqlite_utils.Database, config: Config) -> None:
    holder = sqlite3.connect(config.database_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = checks.check_database(config.database_path, 100)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.verdict == FAIL and "locked" in result.detail
    assert "fuser" in result.advice


# -- nftables ---------------------------------------------------------------------------------
def test_nftables_only_when_it_is_the_backend() -> None:
    runner = Captured({})
    assert checks.check_nftables("memory", runner, is_root=True).verdict == OK
    assert runner.asked == []
    not_root = checks.check_nftables("nftables", runner, is_root=False)
    assert not_root.verdict == WARN and "sudo instore doctor" in not_root.advice


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace of this test's own, deleted afterwards."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason=reason)
    name = f"instore-doctor-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_nftables_table_missing_then_loaded(namespace: str) -> None:
    def in_namespace(argv: Sequence[str]) -> CommandResult:
        return checks.run_command(["ip", "netns", "exec", namespace, *argv])

    missing = checks.check_nftables("nftables", in_namespace, is_root=True)
    assert missing.verdict == FAIL and "table inet instore is missing" in missing.detail
    assert "instore-gatekeeper" in missing.advice
    subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "add", "table", "inet", "instore"], check=True
    )
    assert checks.check_nftables("nftables", in_namespace, is_root=True).verdict == OK


def test_a_program_that_is_not_installed() -> None:
    result = checks.run_command(["instore-no-such-program", "--version"])
    assert result.missing and "not found" in result.first_error_line()


# -- LAN interface ----------------------------------------------------------------------------
def test_lan_interface_on_the_real_sys() -> None:
    sys_net = Path("/sys/class/net")
    loopback = checks.check_lan_interface("lo", sys_net)  # "unknown" but IFF_UP, like a bridge
    assert loopback.verdict == OK
    missing = checks.check_lan_interface("br-nowhere", sys_net)
    assert missing.verdict == FAIL and "hardware.lan_interface" in missing.advice
    assert checks.check_lan_interface("br-nowhere", sys_net, used=False).verdict == OK


def _lan_in(namespace: str, name: str) -> dict[str, str]:
    """The check run inside the namespace, where /sys/class/net shows its interfaces."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from hardware.doctor_checks import check_lan_interface; "
        f"print(json.dumps(check_lan_interface({name!r}, Path('/sys/class/net')).as_dict()))"
    )
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    ).stdout
    result: dict[str, str] = json.loads(out)
    return result


def test_a_guest_bridge_down_up_and_carrying(namespace: str) -> None:
    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", namespace, *args], check=True)

    ip("link", "add", "br-guest", "type", "bridge")
    down = _lan_in(namespace, "br-guest")
    assert down["verdict"] == FAIL and down["detail"] == "br-guest is down"
    assert "ip link set br-guest up" in down["advice"]
    ip("link", "set", "br-guest", "up")  # no ports yet: no carrier to report
    assert _lan_in(namespace, "br-guest")["verdict"] == OK
    ip("link", "add", "guest0", "type", "veth", "peer", "name", "phone0")
    ip("link", "set", "guest0", "master", "br-guest")
    ip("link", "set", "guest0", "up")
    ip("link", "set", "phone0", "up")
    deadline = time.monotonic() + POLL_SECONDS
    while (result := _lan_in(namespace, "br-guest"))["detail"] != "br-guest is up":
        assert time.monotonic() < deadline, result
    assert result["verdict"] == OK


# -- WiFi monitor mode ------------------------------------------------------------------------
def fake_sys_net(root: Path, interface: str, arphrd: int, phy: str | None) -> Path:
    """A sysfs subtree as the kernel lays it out for one WiFi interface."""
    device = root / interface
    device.mkdir(parents=True)
    (device / "type").write_text(f"{arphrd}\n")
    if phy:
        (device / "phy80211").mkdir()
        (device / "phy80211" / "name").write_text(f"{phy}\n")
    return root


def test_wifi_not_configured_is_not_checked(tmp_path: Path) -> None:
    runner = Captured({})
    result = checks.check_wifi_monitor(["ble"], "wlan0mon", tmp_path, runner)
    assert result.verdict == OK and runner.asked == []


def test_wifi_interface_already_in_monitor_mode(tmp_path: Path) -> None:
    sys_net = fake_sys_net(tmp_path, "wlan0mon", 803, "phy0")
    result = checks.check_wifi_monitor(["wifi"], "wlan0mon", sys_net, Captured({}))
    assert result.verdict == OK and "is in monitor mode" in result.detail


def test_wifi_interface_managed_on_a_radio_that_can_monitor(tmp_path: Path) -> None:
    sys_net = fake_sys_net(tmp_path, "wlan1", 1, "phy0")
    runner = Captured({("iw", "phy", "phy0", "info"): said(fixture("iw_list_rtl8812ae.txt"))})
    result = checks.check_wifi_monitor(["wifi"], "wlan1", sys_net, runner)
    assert result.verdict == FAIL and "its radio phy0 supports it" in result.detail
    assert "iw dev wlan1 set type monitor" in result.advice


def test_wifi_on_a_radio_without_monitor_mode(tmp_path: Path) -> None:
    sys_net = fake_sys_net(tmp_path, "wlan0", 1, "phy3")
    runner = Captured({("iw", "phy", "phy3", "info"): said(fixture("iw_list_brcmfmac.txt"))})
    result = checks.check_wifi_monitor(["wifi"], "wlan0", sys_net, runner)
    assert result.verdict == FAIL and "cannot do monitor mode" in result.detail
    assert "USB WiFi adapter" in result.advice


def test_wifi_interface_missing_but_a_radio_can_make_it(tmp_path: Path) -> None:
    runner = Captured({("iw", "list"): said(fixture("iw_list_rtl8812ae.txt"))})
    result = checks.check_wifi_monitor(["wifi"], "wlan0mon", tmp_path, runner)
    assert result.verdict == FAIL
    assert result.advice == "create it: `iw phy phy0 interface add wlan0mon type monitor`"


def test_wifi_interface_missing_and_no_radio_can(tmp_path: Path) -> None:
    runner = Captured({("iw", "list"): said(fixture("iw_list_brcmfmac.txt"))})
    result = checks.check_wifi_monitor(["wifi"], "wlan0mon", tmp_path, runner)
    assert result.verdict == FAIL and "no radio here can do monitor mode (phy3)" in result.detail


def test_wifi_on_this_machine(tmp_path: Path) -> None:
    """The real iw: absent here, or present with no radio (CI); either way no wlan0mon: FAIL."""
    result = checks.check_wifi_monitor(
        ["wifi"], "wlan0mon", Path("/sys/class/net"), checks.run_command
    )
    assert result.verdict == FAIL
    if shutil.which("iw") is None:
        assert "iw is not installed" in result.detail and "apt install iw" in result.advice
    else:
        assert "(none found)" in result.detail


# -- Bluetooth --------------------------------------------------------------------------------
@pytest.fixture
def bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """bluetoothd mocked on a private system bus (python-dbusmock's bluez5 template)."""
    missing = shutil.which("dbus-daemon") is None or any(
        importlib.util.find_spec(name) is None for name in ("dbusmock", "dbus")
    )
    if missing and os.environ.get("CI"):
        pytest.fail("dbus-daemon or python-dbusmock missing; .ci/run installs them")
    if missing:
        pytest.skip(reason="dbus-daemon or python-dbusmock not installed (.ci/run installs them)")
    from tests.bluez_mock import mocked_bluez

    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)  # restored after the test
    with mocked_bluez(tmp_path) as mock:
        yield mock


def ble(adapter: str = "", sys_bluetooth: Path = Path("/nonexistent")) -> checks.CheckResult:
    return checks.check_bluetooth(["ble"], adapter, bluez_adapters, sys_bluetooth)


def test_bluetooth_not_configured_is_not_asked() -> None:
    def never() -> BluezAnswer:
        raise AssertionError("BlueZ asked although BLE is not configured")

    assert checks.check_bluetooth(["wifi"], "", never, Path("/nonexistent")).verdict == OK


def test_bluetooth_adapter_absent_present_and_powered_off(bluez: Any) -> None:
    import dbus

    absent = ble()
    assert absent.verdict == FAIL and absent.detail == "no Bluetooth adapter"
    bluez.add_adapter("hci0")
    assert ble() == checks.CheckResult("bluetooth", OK, "hci0 is present and powered")
    wrong = ble("hci1")
    assert wrong.verdict == FAIL and "BlueZ has hci0" in wrong.detail
    adapter = bluez.connection.get_object("org.bluez", "/org/bluez/hci0")
    adapter.Set(
        "org.bluez.Adapter1",
        "Powered",
        dbus.Boolean(False),
        dbus_interface="org.freedesktop.DBus.Properties",
    )
    off = ble("hci0")
    assert off.verdict == FAIL and off.detail == "hci0 is powered off"
    assert "bluetoothctl power on" in off.advice


def test_bluetoothd_not_running(bluez: Any, tmp_path: Path) -> None:
    bluez.stop_bluetoothd()
    sys_bluetooth = tmp_path / "class-bluetooth"
    (sys_bluetooth / "hci0").mkdir(parents=True)
    result = ble(sys_bluetooth=sys_bluetooth)
    assert result.verdict == FAIL
    assert result.detail == "bluetoothd is not running (the kernel has hci0)"
    assert "systemctl enable --now bluetooth" in result.advice


def test_no_system_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    result = ble()
    assert result.verdict == FAIL and "no system D-Bus" in result.detail


# -- time -------------------------------------------------------------------------------------
def test_time_from_timedatectl() -> None:
    argv = ("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    synced = checks.check_time_sync(Captured({argv: said("yes\n")}), lambda: None)
    assert synced.verdict == OK and "timedatectl" in synced.detail
    drifting = checks.check_time_sync(Captured({argv: said("no\n")}), lambda: True)
    assert drifting.verdict == FAIL and "timedatectl set-ntp true" in drifting.advice


def test_time_from_chrony_when_timedatectl_cannot_answer() -> None:
    argv = ("chronyc", "-n", "tracking")
    synced = Captured({argv: said(fixture("chronyc_tracking_synced.txt"))})
    assert checks.check_time_sync(synced, lambda: None).detail == "synchronised (chrony)"
    unsynced = Captured({argv: said(fixture("chronyc_tracking_unsynced.txt"))})
    assert checks.check_time_sync(unsynced, lambda: None).verdict == FAIL


def test_time_from_the_kernel_clock_of_this_machine() -> None:
    state = checks.kernel_clock_synchronised()
    assert isinstance(state, bool)  # adjtimex answers on any Linux, read-only, unprivileged
    result = checks.check_time_sync(Captured({}), checks.kernel_clock_synchronised)
    assert result.verdict == (OK if state else WARN)
    assert checks.check_time_sync(Captured({}), lambda: None).detail.startswith("unknown")


# -- disk -------------------------------------------------------------------------------------
@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A real filesystem of a given size: a tmpfs mounted for the test (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(reason="mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(size_mb: int) -> Path:
        where = tmp_path / f"fs{size_mb}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(reason=f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in mounted:
            subprocess.run(["umount", str(where)], check=False)


def test_disk_space_on_a_roomy_filesystem(db: sqlite_utils.Database, config: Config) -> None:
    result = checks.check_disk(config.database_path)
    if shutil.disk_usage(config.database_path.parent).free > checks.DISK_WARN_BYTES:
        assert result.verdict == OK
    assert "free on" in result.detail and "database" in result.detail


@pytest.mark.parametrize(("size_mb", "verdict"), [(100, FAIL), (600, WARN)])
def test_disk_space_floors(
    small_filesystem: Callable[[int], Path], size_mb: int, verdict: str
) -> None:
    where = small_filesystem(size_mb)
    open_database(where / "instore.db").conn.close()
    result = checks.check_disk(where / "instore.db")
    assert result.verdict == verdict
    assert (
        "journalctl" in result.advice
        if verdict == FAIL
        else "copy of the database" in result.advice
    )


# -- services ---------------------------------------------------------------------------------
def test_services_without_systemd_as_pid_1(tmp_path: Path) -> None:
    assert not checks.systemd_running(tmp_path)
    (result,) = checks.check_services(Captured({}), systemd=False)
    assert result.verdict == WARN and "instore status" in result.advice


def test_each_installed_unit_gets_a_line(tmp_path: Path) -> None:
    (tmp_path / "systemd" / "system").mkdir(parents=True)
    assert checks.systemd_running(tmp_path)
    listing = (
        "systemctl",
        "list-unit-files",
        "--no-legend",
        "--plain",
        "--type=service",
        "instore-*",
    )
    runner = Captured(
        {
            listing: said(fixture("systemctl_list_unit_files.txt")),
            ("systemctl", "is-active", "instore-gatekeeper.service"): said("active\n"),
            ("systemctl", "is-active", "instore-offers.service"): CommandResult(3, "failed\n", ""),
            ("systemctl", "is-active", "instore-presence.service"): CommandResult(
                3, "inactive\n", ""
            ),
            ("systemctl", "is-active", "instore-portal.service"): CommandResult(
                3, "activating\n", ""
            ),
        }
    )
    lines = {r.name: r for r in checks.check_services(runner, systemd=True)}
    assert lines["service instore-gatekeeper"].verdict == OK
    assert lines["service instore-offers"].verdict == FAIL
    assert "journalctl -u instore-offers.service" in lines["service instore-offers"].advice
    assert lines["service instore-presence"].verdict == OK  # disabled on purpose: not started
    assert lines["service instore-portal"].verdict == WARN
    nothing = checks.check_services(Captured({listing: said("")}), systemd=True)
    assert nothing[0].verdict == WARN and "install.sh" in nothing[0].advice


# -- the command -------------------------------------------------------------------------------
def test_doctor_command_exit_code_follows_the_verdicts(
    db: sqlite_utils.Database, config: Config
) -> None:
    env = {"INSTORE_DATABASE_PATH": str(config.database_path), "INSTORE_CONFIG": ""}
    result = CliRunner().invoke(main, ["doctor", "--json"], env=env)
    report = json.loads(result.output)
    failed = [c for c in report["checks"] if c["verdict"] == FAIL]
    assert result.exit_code == (1 if failed else 0), failed
    assert report["ok"] is not bool(failed)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["database"]["verdict"] == OK
    assert {
        "config",
        "nftables",
        "lan interface",
        "wifi monitor mode",
        "bluetooth",
        "time sync",
        "disk space",
    } <= set(by_name)
    table = CliRunner().invoke(main, ["doctor"], env=env)
    assert table.exit_code == result.exit_code
    assert table.output.startswith("CHECK") and "database" in table.output


def test_doctor_command_fails_on_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "instore.toml"
    path.write_text("[store]\ntimezone = 'Mars/Olympus'\n")
    result = CliRunner().invoke(main, ["--config", str(path), "doctor"], env={"INSTORE_CONFIG": ""})
    assert result.exit_code == 1
    assert "config" in result.output and "unknown time zone" in result.output
    assert "Traceback" not in result.output
