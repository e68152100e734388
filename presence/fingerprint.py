"""Count devices, not MACs: estimate how many phones sent a set of probe requests.

Phones probe with random (locally administered) MACs that change every scan or every few
minutes, so counting addresses overcounts a phone many times. Three things survive a rotation:

1. **The IE fingerprint** (``presence.dot11``): same model and OS, same elements in the same
   order with the same capabilities. Different fingerprints are different devices.
2. **Sequence numbers**: many chipsets keep one 12-bit counter across MAC changes, so a new MAC
   whose first sequence number follows closely on the last one of an address that just went
   quiet is the same radio.
3. **Timing**: a phone uses one MAC at a time. Two addresses with the same fingerprint heard at
   overlapping times are two phones (the split); an address that starts shortly after another
   one with the same fingerprint stopped may be the same phone (the merge).

Within one fingerprint the addresses are sorted by first sighting and chained greedily: each joins
the chain that ended before it started and continues it best (sequence continuity first, then the
shortest silence), or starts a new chain. The estimate is the number of chains. Same-model phones
taking turns can be merged (an undercount), and phones that reset their counter and stay silent
longer than ``TIMING_LINK_MAX_GAP_S`` are split (an overcount); both are bounded by the timing
rules below. Universally administered MACs are not rotated: each counts as one device.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from presence.dot11 import SEQ_MODULO
from presence.observation import is_randomized

# A new address continues an old one's counter when its first sequence number is at most this
# far ahead (mod 4096). Between its last probe on the old MAC and its first on the new one a phone
# sends a few scan bursts (4-16 probes each) and, when associated, some data frames: a few
# hundred at most. A random fresh counter lands in this window by chance 1 time in 16.
SEQ_CONTINUITY_WINDOW = 256
# ...and only if it started at most this long after the old one went quiet: a counter that
# resumes after ten minutes is as likely another phone of the same model.
SEQ_LINK_MAX_GAP_S = 600.0
# Without sequence continuity (the phone reset its counter with its MAC), a new address is the
# same phone only if it started within this long after the old one stopped. Idle phones scan
# every 30-120 s, each scan possibly under a new MAC.
TIMING_LINK_MAX_GAP_S = 120.0
# Probes of one scan from two radios of a sensor, or two sensors, can arrive slightly out of
# order; an address that starts this little before another ends still counts as after it.
OVERLAP_TOLERANCE_S = 0.5
# How often (in capture time) chains too old to be continued are dropped from consideration.
PRUNE_EVERY_S = 60.0


@dataclass(slots=True)
class AddressTrack:
    """One address's probe requests: when it was first and last heard, and its counter."""

    address: str
    fingerprint: str
    first_ts: float
    last_ts: float
    first_seq: int
    last_seq: int
    frames: int = 1


@dataclass(slots=True)
class _Chain:
    """Addresses believed to be one device: where it was last heard, and its counter then."""

    last_ts: float
    last_seq: int
    index: int  # into the list of devices' addresses


class DeviceCounter:
    """Accumulate probe requests (O(1) each), then estimate the number of distinct devices."""

    def __init__(self) -> None:
        self.tracks: dict[str, AddressTrack] = {}

    def add(self, address: str, ts: float, seq: int, fingerprint: str) -> None:
        """Record one probe request from ``address``."""
        track = self.tracks.get(address)
        if track is None:
            self.tracks[address] = AddressTrack(address, fingerprint, ts, ts, seq, seq)
            return
        track.frames += 1
        if ts >= track.last_ts:
            track.last_ts = ts
            track.last_seq = seq
        elif ts < track.first_ts:
            track.first_ts = ts
            track.first_seq = seq

    @property
    def addresses(self) -> int:
        return len(self.tracks)

    @property
    def randomized_addresses(self) -> int:
        return sum(1 for address in self.tracks if is_randomized(address))

    def estimate(self) -> int:
        """Distinct devices: fixed MACs count once each, rotating ones are chained per
        fingerprint (see the module docstring)."""
        by_fingerprint: dict[str, list[AddressTrack]] = defaultdict(list)
        fixed = 0
        for track in self.tracks.values():
            if is_randomized(track.address):
                by_fingerprint[track.fingerprint].append(track)
            else:
                fixed += 1
        return fixed + sum(len(chain_tracks(group)) for group in by_fingerprint.values())


def chain_tracks(tracks: Iterable[AddressTrack]) -> list[list[str]]:
    """Group one fingerprint's random addresses into devices; return each device's addresses."""
    members: list[list[str]] = []
    open_chains: list[_Chain] = []  # chains a later address may still continue
    longest_link = max(SEQ_LINK_MAX_GAP_S, TIMING_LINK_MAX_GAP_S)
    pruned_at = float("-inf")
    for track in sorted(tracks, key=lambda t: (t.first_ts, t.address)):
        # Addresses come in order of first sighting, so a chain silent for longer than any link
        # allows stays closed: dropping those now and then keeps a day-long capture linear.
        if track.first_ts - pruned_at > PRUNE_EVERY_S:
            pruned_at = track.first_ts
            open_chains = [c for c in open_chains if pruned_at - c.last_ts <= longest_link]
        chain = _best_chain(open_chains, track)
        if chain is None:
            members.append([track.address])
            open_chains.append(_Chain(track.last_ts, track.last_seq, len(members) - 1))
            continue
        chain.last_ts = max(chain.last_ts, track.last_ts)
        chain.last_seq = track.last_seq
        members[chain.index].append(track.address)
    return members


def _best_chain(chains: list[_Chain], track: AddressTrack) -> _Chain | None:
    """The chain ``track`` continues best, or None when it must be a new device.

    Ranks: sequence continuity first (the smaller step, then the shorter silence), then timing
    alone (the shorter silence); a float rank rather than tuples, as this is the inner loop.
    """
    first_ts = track.first_ts
    first_seq = track.first_seq
    best: _Chain | None = None
    best_rank = float("inf")
    for chain in chains:
        gap = first_ts - chain.last_ts
        if gap < -OVERLAP_TOLERANCE_S:
            continue  # still active when this address started: a different device
        step = (first_seq - chain.last_seq) % SEQ_MODULO
        if 0 < step <= SEQ_CONTINUITY_WINDOW and gap <= SEQ_LINK_MAX_GAP_S:
            rank = step + max(gap, 0.0) / SEQ_LINK_MAX_GAP_S  # in (0, window + 1]
        elif gap <= TIMING_LINK_MAX_GAP_S:
            rank = SEQ_CONTINUITY_WINDOW + 2 + max(gap, 0.0)  # worse than any continuity
        else:
            continue
        if rank < best_rank:
            best, best_rank = chain, rank
    return best


def estimate_devices(sightings: Iterable[tuple[str, float, int, str]]) -> int:
    """Distinct devices among ``(address, ts, seq, fingerprint)`` probe sightings."""
    counter = DeviceCounter()
    for address, ts, seq, fingerprint in sightings:
        counter.add(address, ts, seq, fingerprint)
    return counter.estimate()
