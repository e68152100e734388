"""``instore doctor``: check the box from the config file down to the radios, and say what to fix.

Each line of the table is one check with a verdict (ok, warn, FAIL) and, when not ok, one
sentence saying what to do. FAIL means the product cannot work as configured; warn means it
works but something needs attention or could not be checked. The command exits 1 when any line
is FAIL, so a provisioning script or a fleet tool can act on it.

The checks themselves live in ``hardware.doctor_checks``; this module decides which to run with
which inputs (``DoctorInputs``, the seam tests fill with temporary paths and runners).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hardware import doctor_checks as checks
from hardware.doctor_checks import FAIL, OK, WARN, CheckResult, Runner
from hardware.doctor_radios import BluezAnswer, bluez_adapters
from instore.config import Config, ConfigError, load_config

VERDICT_WIDTH = 4
NAME_WIDTH = 22


@dataclass
class DoctorInputs:
    """Where the doctor looks; the defaults are the real machine."""

    runner: Runner = checks.run_command
    sys_net: Path = Path("/sys/class/net")
    sys_bluetooth: Path = Path("/sys/class/bluetooth")
    run_root: Path = Path("/run")
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    bluez: Callable[[], BluezAnswer] = bluez_adapters
    kernel_clock: Callable[[], bool | None] = checks.kernel_clock_synchronised


def check_config(config_path: str | None) -> tuple[CheckResult, Config | None]:
    """The config file parses and validates (the same loading every service does)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return (
            CheckResult(
                "config",
                FAIL,
                str(exc),
                "fix that line (every key is explained in deploy/instore.toml.example), "
                "then check with `instore config`",
            ),
            None,
        )
    source = config.source if config.source != "defaults" else "no file: built-in defaults"
    if config.overrides:
        source += f" + {', '.join(config.overrides)}"
    return CheckResult("config", OK, f"valid ({source})"), config


def run_checks(config_path: str | None, inputs: DoctorInputs | None = None) -> list[CheckResult]:
    """Every check, in the order a person would fix things: config, data, network, radios."""
    inputs = inputs or DoctorInputs()
    config_result, config = check_config(config_path)
    results = [config_result]
    if config is None:
        for name in ("database", "nftables", "lan interface", "wifi monitor mode", "bluetooth"):
            results.append(
                CheckResult(name, WARN, "not checked: the config is invalid", "fix the config")
            )
    else:
        presence = config["presence"]
        results += [
            checks.check_database(config.database_path, config["database"]["busy_timeout_ms"]),
            checks.check_nftables(config["gateway"]["backend"], inputs.runner, inputs.is_root),
            checks.check_lan_interface(
                config["hardware"]["lan_interface"],
                inputs.sys_net,
                used=config["gateway"]["backend"] == "nftables"
                or config["hardware"]["client_lookup"] == "neighbours",
            ),
            checks.check_wifi_monitor(
                presence["sources"], presence["wifi_interface"], inputs.sys_net, inputs.runner
            ),
            checks.check_bluetooth(
                presence["sources"], presence["ble_adapter"], inputs.bluez, inputs.sys_bluetooth
            ),
        ]
    results.append(checks.check_time_sync(inputs.runner, inputs.kernel_clock))
    if config is not None:
        results.append(checks.check_disk(config.database_path))
    results += checks.check_services(inputs.runner, checks.systemd_running(inputs.run_root))
    return results


def render_table(results: list[CheckResult]) -> str:
    """The human table: one line per check, the advice after the finding."""
    lines = [f"{'CHECK':<{NAME_WIDTH}}  {'':<{VERDICT_WIDTH}}  FOUND — WHAT TO DO"]
    for result in results:
        text = result.detail + (f" — {result.advice}" if result.advice else "")
        lines.append(f"{result.name:<{NAME_WIDTH}}  {result.verdict:<{VERDICT_WIDTH}}  {text}")
    failed = sum(r.verdict == FAIL for r in results)
    warned = sum(r.verdict == WARN for r in results)
    if failed:
        lines.append(f"\n{failed} FAIL, {warned} warn: fix the FAIL lines first.")
    elif warned:
        lines.append(f"\nno FAIL, {warned} warn: the box works; the warn lines need a look.")
    else:
        lines.append(f"\nall {len(results)} checks {OK}.")
    return "\n".join(lines)
