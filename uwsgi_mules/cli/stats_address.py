"""Reach a running uWSGI's stats server: kept here for the command line's
users; the code is :mod:`uwsgi_mules.monitor.sources.stats_address`."""

from ..monitor.sources.stats_address import (
    PROBE_SECONDS,
    StatsAddress,
    StatsError,
    StatsReading,
    parse_address,
    read_stats,
)

__all__ = ["PROBE_SECONDS", "StatsAddress", "StatsError", "StatsReading", "parse_address", "read_stats"]
