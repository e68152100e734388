"""Presence: radio sightings to zones (sources, identity, estimation, tracking). See DESIGN.md."""
