"""Canned real BLE adverts for the presence tests, each with its decoded meaning.

Raw advertising data as a scanner reports it: the published captures are split into their AD
structures for reading (``test_ble.py`` pins them to the originals byte for byte). Also the
loyalty advert a member's phone sends, built from a fixed box key.
"""

from __future__ import annotations

from presence.ble import (
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    IBeacon,
    loyalty_manufacturer_data,
    member_token_key,
)

# Apple's AirLocate sample UUID, advertised from a Linux box in David G. Young's answer to "What is
# the iBeacon Bluetooth Profile" (Stack Overflow, 2013): flags 0x1a, then the iBeacon.
AIRLOCATE_IBEACON = bytes.fromhex(
    "02011a"  # flags: LE general discoverable, BR/EDR capable
    "1aff4c00"  # manufacturer data, Apple (0x004C)
    "0215"  # iBeacon, 21 bytes follow
    "e2c56db5dffb48d2b060d0f5a71096e0"  # proximity UUID
    "0000"  # major 0
    "0000"  # minor 0
    "c5"  # measured power -59 dBm at 1 m
)
AIRLOCATE_MEANS = IBeacon("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 0, 0, -59)

# Captured from a Blue Charm BC011 beacon; Android's Bluetooth stack replays these four in its
# scan test mode (AOSP packages/modules/Bluetooth, ScanController.TEST_MODE_BEACONS). Each also
# carries Blue Charm's own service data (UUID 0x2080) and the name "BlueCharm_169685".
BLUECHARM_TAIL = "09168020691e0efe13551109426c7565436861726d5f313639363835"
BLUECHARM_IBEACON = bytes.fromhex(
    "020106" "1aff4c000215"
    "426c7565436861726d426561636f6e73"  # UUID: "BlueCharmBeacons" in ASCII
    "0efe" "1355" "c5" + BLUECHARM_TAIL + "00000000"
)  # fmt: skip
BLUECHARM_IBEACON_MEANS = IBeacon("426c7565-4368-6172-6d42-6561636f6e73", 3838, 4949, -59)
BLUECHARM_EDDYSTONE_URL = bytes.fromhex(
    "020106" "0303aafe"  # flags; complete list of 16-bit service UUIDs: 0xFEAA
    "1716aafe" "10" "ee"  # Eddystone service data: URL frame, -18 dBm at 0 m
    "01" "626c7565636861726d626561636f6e73" "00"  # "https://www." "bluecharmbeacons" ".com/"
    + BLUECHARM_TAIL + "000000"
)  # fmt: skip
BLUECHARM_EDDYSTONE_URL_MEANS = EddystoneURL("https://www.bluecharmbeacons.com/", -18)
BLUECHARM_EDDYSTONE_UID = bytes.fromhex(
    "020106" "0303aafe"
    "1716aafe" "00" "ee"  # UID frame, -18 dBm at 0 m
    "626c7565636861726d31" "000000000001" "0000"  # namespace "bluecharm1", instance 1, RFU
    + BLUECHARM_TAIL + "000000"
)  # fmt: skip
BLUECHARM_EDDYSTONE_UID_MEANS = EddystoneUID("626c7565636861726d31", "000000000001", -18)
BLUECHARM_EDDYSTONE_TLM = bytes.fromhex(
    "020106" "0303aafe"
    "1116aafe" "20" "00"  # TLM frame, version 0 (unencrypted)
    "0bf0" "1700" "00088748" "03fb9354"  # 3056 mV, 23.0 °C, 558 920 adverts, 6 681 890.0 s
    "0916802069080efe1355" "1109426c7565436861726d5f313639363835" + "00" * 9
)  # fmt: skip
BLUECHARM_EDDYSTONE_TLM_MEANS = EddystoneTLM(3056, 23.0, 0x00088748, 6_681_890.0)

# MikroTik TG-BT5 tags as listed by RouterOS (help.mikrotik.com, Bluetooth, "peripheral devices"):
# RouterOS decodes the TLM as 2.928 V, 21.285 °C, 37040856 packets, uptime 3724474.2 s.
MIKROTIK_EDDYSTONE_TLM = bytes.fromhex("0201060303aafe1116aafe20000b701549023532d802384f46")
MIKROTIK_EDDYSTONE_TLM_MEANS = EddystoneTLM(2928, 21 + 0x49 / 256, 37_040_856, 3_724_474.2)
# ...and a UID without flags: -27 dBm, namespace b2b98de4c81c47c2b14e, instance 750000000000.
MIKROTIK_EDDYSTONE_UID = bytes.fromhex("0303aafe1716aafe00e5b2b98de4c81c47c2b14e7500000000000000")
MIKROTIK_EDDYSTONE_UID_MEANS = EddystoneUID("b2b98de4c81c47c2b14e", "750000000000", -27)

# The Android Beacon Library's Eddystone-UID test vector (GattBeaconTest): an 18-byte frame
# without the RFU bytes, as older firmware sends it, in a scan record padded with zeros.
ALTBEACON_EDDYSTONE_UID = bytes.fromhex(
    "0201060303aafe1516aafe00e700010203040506070809010203040506" + "00" * 33
)
ALTBEACON_EDDYSTONE_UID_MEANS = EddystoneUID("00010203040506070809", "010203040506", -25)

# --- The loyalty advert ------------------------------------------------------------------------

BOX_KEY = bytes(range(32))
MEMBER = "member-42"


def phone_advert(member_id: str, unix_time: float, key: bytes = BOX_KEY) -> bytes:
    """What the member's app advertises: it holds only its own member key."""
    return loyalty_manufacturer_data(member_token_key(key, member_id), member_id, unix_time)
