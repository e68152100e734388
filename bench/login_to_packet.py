"""Login → first forwarded packet: how long a phone waits between "You're online" and the internet.

Issue 3 asks for p50/p99 over 50 logins in the namespace topology of ``tests/netns.py``: the real
portal (gunicorn) and the real gatekeeper (nftables backend) in a ``box`` namespace, a ``phone``
signing in through the portal's forms over real HTTP, and an ``internet`` host behind the box.

One round: the phone signs in (the first round signs up and accepts the WiFi terms), and the
clock starts when the portal's answer that authorized it (the redirect to /online) arrives. The
phone then opens a new TCP connection to 198.51.100.2:80 and sends a GET every few milliseconds
until the real host answers; the clock stops when it has. (A bare TCP connect would not do: before
sign-in, port 80 is redirected to the portal and connects too.) Then the phone signs out and waits
until it is intercepted again, so every round starts closed; that time is printed as well, and
so is the time from *submitting* the authorizing form (the shopper's tap; it includes the portal's
work, password hashing on sign-in, and the response's trip).

The gatekeeper runs with the shipped ``[gateway] reconcile_seconds`` (5), so what is measured is
the portal's nudge, not the periodic check. It prints figures; it is not a test and asserts
nothing about them. Needs root, ``ip`` and ``nft``; exits 2 with a message otherwise.

Run from the repository root: ``sudo .venv/bin/python bench/login_to_packet.py [--rounds 50]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

from benchlib import invocation, load_average, percentile, run_guarded, tests_importable

tests_importable()  # the harness lives in tests/
from instore.config import DEFAULTS  # noqa: E402
from tests import netns  # noqa: E402

DEFAULT_ROUNDS = 50  # what issue 3 asks for
# A round that is not online (or closed) within this long is a failure, not a slow sample.
ROUND_TIMEOUT_SECONDS = 10.0


def summary(name: str, samples: list[float]) -> str:
    """One row: nearest-rank percentiles, values that were measured (of 50, p99 is the max)."""
    ms = [sample * 1000 for sample in samples]
    return (
        f"{name:<34} n={len(ms):<3} p50 {percentile(ms, 0.5):7.1f} ms   "
        f"p99 {percentile(ms, 0.99):7.1f} ms   max {max(ms):7.1f} ms   min {min(ms):6.1f} ms"
    )


def one_round(lab: netns.Lab, identifier: str, first: bool) -> tuple[float, float, float]:
    """Seconds from the login response and from the form's submission to the host answering,
    and from the sign-out response to being intercepted again."""
    web = netns.http_probe(netns.INTERNET_URL)
    online = lab.phone.call(
        "online",
        portal=netns.PORTAL_URL,
        identifier=identifier,
        password=netns.PASSWORD,
        name="Bench Shopper",
        signup=first,
        probes=[{"probe": web, "want": netns.REAL, "timeout": ROUND_TIMEOUT_SECONDS}],
    )
    (reached,) = online["probes"]
    if not online["online_page"] or not reached["matched"]:
        raise netns.HarnessError(f"not online: {online}\n{lab.diagnostics()}")
    signed_out = lab.phone.call("signout", portal=netns.PORTAL_URL)
    closed = lab.phone.wait(web, netns.INTERCEPTED, ROUND_TIMEOUT_SECONDS)
    if not closed["matched"]:
        raise netns.HarnessError(f"still online after sign-out: {closed}\n{lab.diagnostics()}")
    return (
        reached["done"] - online["authorized_at"],
        reached["done"] - online["submitted_at"],
        closed["done"] - signed_out["at"],
    )


def run(args: argparse.Namespace) -> int:
    reconcile = str(DEFAULTS["gateway"]["reconcile_seconds"])
    with tempfile.TemporaryDirectory(prefix="instore-login-bench-") as tmp:
        lab = netns.Lab(Path(tmp), {"INSTORE_GATEWAY_RECONCILE_SECONDS": reconcile})
        try:
            lab.start()
            identifier = lab.new_identity()
            logins: list[float] = []
            submits: list[float] = []
            signouts: list[float] = []
            for n in range(args.rounds):
                login, submit, signout = one_round(lab, identifier, first=n == 0)
                logins.append(login)
                submits.append(submit)
                signouts.append(signout)
                if args.verbose:
                    print(
                        f"round {n + 1:3}: {login * 1000:6.1f} ms from the response, "
                        f"{submit * 1000:6.1f} ms from the tap; sign-out {signout * 1000:6.1f} ms"
                    )
        finally:
            lab.close()
    nft = netns.run(["nft", "--version"]).strip()
    print(f"\nlogin → first forwarded packet, {args.rounds} logins (tests/netns.py topology)")
    print(summary("login response → host answers", logins))
    print(summary("form submitted → host answers", submits))
    print(summary("sign-out response → intercepted", signouts))
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load {load_average()}, "
        f"kernel {platform.release()}, {nft}, Python {platform.python_version()}; "
        f"gatekeeper reconcile_seconds={reconcile}"
    )
    print(f"command: {invocation()}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="logins to time")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = netns.skip_reason()
    if reason is not None:
        print(f"login_to_packet: {reason}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("login_to_packet: --rounds must be at least 1", file=sys.stderr)
        return 2
    return run_guarded(
        "login_to_packet",
        lambda: run(args),
        interrupted="namespaces removed",
        errors=(netns.HarnessError,),
    )


if __name__ == "__main__":
    sys.exit(main())
