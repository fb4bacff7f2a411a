"""airlift's value formats as openLooKeng writes them, checked against the seed document's examples."""

from __future__ import annotations

import pytest

from api.facades.openlookeng import formats as f


@pytest.mark.parametrize(("nanos", "text"), [
    (4_000_000_000, "4.00s"), (6_390_000, "6.39ms"), (0, "0.00ns"), (92_000, "92.00us"),
    (4_190_000, "4.19ms"), (29_500_000, "29.50ms"), (137_900, "137.90us"), (999, "999.00ns"),
    (90 * 10**9, "1.50m"), (2 * 3600 * 10**9, "2.00h"), (3 * 86400 * 10**9, "3.00d"),
])
def test_durations_print_two_decimals_in_the_most_succinct_unit(nanos: int, text: str) -> None:
    assert f.duration(nanos) == text


def test_a_duration_just_under_a_unit_is_printed_in_that_unit_as_airlift_does() -> None:
    assert f.duration(999_950) == "1.00ms"  # airlift switches units above 0.9999


def test_durations_round_half_up_like_java_not_half_even() -> None:
    assert f.duration(1_125_000) == "1.13ms"  # 1.125 is exact in binary: Java rounds up, Python to even


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (178_954, "174.76kB"), (16 * 1024**2, "16MB"), (11_162, "10.90kB"), (10_701, "10.45kB"),
    (1023, "1023B"), (1024, "1kB"), (1536, "1.50kB"), (3 * 1024**3, "3GB"), (1024**5 * 2, "2PB"),
])
def test_data_sizes_are_1024_based_and_whole_values_have_no_decimals(size: int, text: str) -> None:
    assert f.data_size(size) == text


@pytest.mark.parametrize(("text", "seconds"), [
    ("1.00s", 1.0), ("500ms", 0.5), (" 2m ", 120.0), ("0.00ns", 0.0), ("1d", 86400.0), ("250.5us", 0.0002505),
])
def test_durations_parse_back(text: str, seconds: float) -> None:
    assert f.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1.0 sec", "-1s", "1e3s", "1,5s", "1S", "9" * 400 + "d", "1.s"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        f.parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [("16MB", 16 * 1024**2), ("1.50kB", 1536), ("0B", 0), ("2GB", 2 * 1024**3)])
def test_data_sizes_parse_back(text: str, size: int) -> None:
    assert f.parse_data_size(text) == size


@pytest.mark.parametrize("text", ["16", "16mb", "16 KB", "-1B", "MB", "1.5.0kB"])
def test_anything_else_is_not_a_data_size(text: str) -> None:
    with pytest.raises(ValueError):
        f.parse_data_size(text)


def test_timestamps_carry_milliseconds_and_a_numeric_offset_in_utc() -> None:
    assert f.timestamp("2014-01-15T17:12:12.518734+00:00") == "2014-01-15T17:12:12.518+00:00"
    assert f.timestamp("2014-01-15T12:12:12-05:00") == "2014-01-15T17:12:12.000+00:00"


def test_the_time_between_two_instants_is_in_nanoseconds_and_never_negative() -> None:
    assert f.nanos_between("2014-01-15T12:12:08.520+00:00", "2014-01-15T12:12:08.526390+00:00") == 6_390_000
    assert f.nanos_between("2014-01-15T12:12:09+00:00", "2014-01-15T12:12:08+00:00") == 0
