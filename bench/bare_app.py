"""The baseline for bench/probe_throughput.py: the least work Flask can do for one request.

Its only route answers ``204 No Content`` with an empty body, like an Android probe answered
online. Served under the same gunicorn settings as the portal, it measures what gunicorn + Flask
cost on this machine, so the portal's probe path can be reported as a ratio of it instead of as an
absolute number that means nothing on another box.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.route("/generate_204")
def generate_204() -> tuple[str, int]:
    """Empty 204: the same answer the portal gives an authorized Android probe."""
    return "", 204
