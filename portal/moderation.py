"""Skeleton: filled in by its feature (issue 7)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("moderation", __name__)
