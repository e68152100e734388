"""Tables the presence package owns: floor plan zones, sensors, sightings, salts, live state."""

from __future__ import annotations

from instore import hookimpl
from instore.member_data import MemberTable
from instore.migrations import Migration

PRESENCE_MIGRATIONS: list[Migration] = [
    Migration(
        "presence",
        1,
        "zones, sensors, sightings, identity salts, live presence",
        (
            # A zone is a polygon on the floor plan: points as JSON [[x, y], ...] in metres.
            """CREATE TABLE zones (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                polygon TEXT NOT NULL,
                colour TEXT NOT NULL DEFAULT '#0a6e5c',
                created_at TEXT NOT NULL
            )""",
            # A sensor is a radio at a position, belonging to a zone. tx_power_dbm is the RSSI it
            # reads at 1 m, for path-loss distance.
            """CREATE TABLE sensors (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('wifi', 'ble', 'sim')),
                x REAL NOT NULL,
                y REAL NOT NULL,
                zone_id INTEGER REFERENCES zones(id) ON DELETE SET NULL,
                rssi_at_1m REAL NOT NULL DEFAULT -45,
                last_seen_at TEXT
            )""",
            # Downsampled sightings: one row per device, sensor and interval. device is a member
            # reference ("m:12") or a keyed hash ("h:…"), never a raw MAC of a non-member.
            """CREATE TABLE sightings (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                device TEXT NOT NULL,
                sensor_id TEXT NOT NULL,
                rssi REAL,
                samples INTEGER NOT NULL DEFAULT 1
            )""",
            "CREATE INDEX sightings_ts ON sightings(ts)",
            # The day's HMAC key for hashing non-member addresses; old days are deleted.
            """CREATE TABLE identity_salts (
                day TEXT PRIMARY KEY,
                salt BLOB NOT NULL
            )""",
            # Where each tracked device is now, for occupancy and for the manager's live view.
            """CREATE TABLE presence_state (
                device TEXT PRIMARY KEY,
                member_id INTEGER REFERENCES members(id) ON DELETE CASCADE,
                zone_id INTEGER REFERENCES zones(id) ON DELETE SET NULL,
                entered_at TEXT NOT NULL,
                last_seen_at TEXT NOT NULL,
                dwell_sent INTEGER NOT NULL DEFAULT 0
            )""",
        ),
    ),
    Migration(
        "presence",
        2,
        "calibration fingerprints for kNN zone location",
        (
            # One calibration sample: the smoothed RSSI per sensor (JSON {"sensor id": dBm})
            # read while a phone stood in the zone. `instore presence calibrate` records them.
            """CREATE TABLE zone_fingerprints (
                id INTEGER PRIMARY KEY,
                zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
                vector TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX zone_fingerprints_zone ON zone_fingerprints(zone_id)",
        ),
    ),
    Migration(
        "presence",
        3,
        "hourly footfall in devices (not MACs)",
        (
            # Distinct devices heard per hour, estimated from probe-request fingerprints so a
            # phone rotating its MAC counts once; addresses kept beside it to show the difference.
            """CREATE TABLE footfall (
                hour TEXT PRIMARY KEY,
                devices INTEGER NOT NULL,
                addresses INTEGER NOT NULL,
                randomized_addresses INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(
        "presence",
        4,
        "the demo's walk-my-phone requests",
        (
            # The portal's demo control asks the simulator to walk a member's phone to a zone
            # (presence.walks); the sim marks a row taken, with what became of it.
            """CREATE TABLE sim_walks (
                id INTEGER PRIMARY KEY,
                member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
                requested_at TEXT NOT NULL,
                taken_at TEXT,
                outcome TEXT
            )""",
            # The sim asks "anything pending?" every second: only pending rows are indexed.
            "CREATE INDEX sim_walks_pending ON sim_walks(id) WHERE taken_at IS NULL",
        ),
    ),
    Migration(
        "presence",
        5,
        "the floor plan image and its scale",
        (
            # At most one row (id = 1): the picture a manager uploaded, drawn under the zones.
            # metres_per_px is the scale they set by drawing a line of known length; zones and
            # sensors stay in metres, so re-scaling moves the picture under them, not the zones.
            # The image's top-left corner is the origin (0, 0); y grows downwards, as on screen.
            """CREATE TABLE floorplan (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                mime TEXT NOT NULL CHECK (mime IN ('image/png', 'image/jpeg', 'image/svg+xml')),
                image BLOB NOT NULL,
                width_px INTEGER NOT NULL CHECK (width_px > 0),
                height_px INTEGER NOT NULL CHECK (height_px > 0),
                metres_per_px REAL NOT NULL CHECK (metres_per_px > 0),
                sha256 TEXT NOT NULL,
                uploaded_at TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        "presence",
        6,
        "dwell time per zone rolled up by hour, for the console's analytics",
        (
            # How many zone visits ended in each hour (UTC, as stored) per zone, by dwell bucket
            # (bucket_0 shortest; edges in presence.reports.DWELL_BUCKET_EDGES_S): months of
            # zone events become a few thousand rows, so the analytics page reads a quarter in
            # milliseconds. Filled from the outbox by presence.reports.catch_up_dwell, which
            # keeps its cursor in `cursors`.
            """CREATE TABLE zone_dwell_hourly (
                hour TEXT NOT NULL,
                zone_id INTEGER NOT NULL,
                bucket_0 INTEGER NOT NULL DEFAULT 0,
                bucket_1 INTEGER NOT NULL DEFAULT 0,
                bucket_2 INTEGER NOT NULL DEFAULT 0,
                bucket_3 INTEGER NOT NULL DEFAULT 0,
                bucket_4 INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (hour, zone_id)
            ) WITHOUT ROWID""",
            # zone_enter events still waiting for their zone_exit when a catch-up stopped.
            """CREATE TABLE zone_dwell_open (
                device TEXT NOT NULL,
                zone_id INTEGER NOT NULL,
                entered_at TEXT NOT NULL,
                PRIMARY KEY (device, zone_id)
            ) WITHOUT ROWID""",
        ),
    ),
]


@hookimpl
def instore_migrations() -> list[Migration]:
    """The presence package's schema steps."""
    return PRESENCE_MIGRATIONS


@hookimpl
def member_data_tables() -> list[MemberTable]:
    """Presence history: a member's sightings, live state, demo walks and open zone visits."""
    return [
        MemberTable("sightings", "device = :device"),
        MemberTable("presence_state", "member_id = :member_id OR device = :device"),
        MemberTable("sim_walks", "member_id = :member_id"),
        MemberTable("zone_dwell_open", "device = :device"),
    ]
