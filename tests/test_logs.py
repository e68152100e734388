"""Structured logs: one logfmt line per record with the extra fields."""

from __future__ import annotations

import logging

import pytest

from instore.logs import LogfmtFormatter, setup_logging


def test_logfmt_line_carries_extras() -> None:
    record = logging.LogRecord("portal.account", logging.INFO, __file__, 1, "signed in", None, None)
    record.member = 12
    record.note = 'two words "quoted"'
    line = LogfmtFormatter().format(record)
    assert line.startswith("ts=")
    assert ' level=info logger=portal.account msg="signed in" member=12 ' in line
    assert 'note="two words \\"quoted\\""' in line
    assert "\n" not in line


def test_setup_logging_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    setup_logging("INFO")  # idempotent: one handler, one line per record
    logging.getLogger("instore.test").info("hello", extra={"k": "v"})
    out = capsys.readouterr().out.strip().splitlines()
    assert len([line for line in out if "msg=hello" in line]) == 1
    assert "k=v" in out[-1]
