"""The store's requests: how a load splits a stream into version ranges."""

from __future__ import annotations

from dynamo_es.dynamodb.flows.requests import version_ranges


def test_ranges_of_a_page_each_cover_the_versions_once_in_order() -> None:
    """Consecutive, inclusive, no gap and no overlap; the last one ends at ``last``."""
    assert version_ranges(101, 350, size=100, most=8) == [(101, 200), (201, 300), (301, 350)]


def test_no_more_than_most_ranges() -> None:
    """A long stream gets ``most`` larger ranges (each read by pages), not hundreds of requests at once."""
    ranges = version_ranges(1, 50_000, size=1_000, most=8)
    assert len(ranges) == 8 and ranges[0] == (1, 6_250) and ranges[-1] == (43_751, 50_000)


def test_nothing_left_is_no_range() -> None:
    """A stream that ended with its first page: nothing more to read."""
    assert version_ranges(11, 10, size=10, most=8) == []
