"""The offers package's built-in delivery channels, registered through ``delivery_channels``.

Web Push is registered like any third-party channel would be, so the worker treats it no
differently from an SMS or chat-app plug-in.
"""

from __future__ import annotations

from typing import Any

from instore import hookimpl
from instore.config import Config
from offers.channels.webpush_channel import WebPushChannel


@hookimpl
def delivery_channels(config: Config) -> list[Any]:
    """Web Push to the browsers members subscribed on the store page."""
    return [WebPushChannel.from_config(config)]
