"""The HEAD window alone: it grows while answers come faster, gives back a doubling that did not pay."""

from __future__ import annotations

from cottoncandy.storage.s3.inflight import InFlightWindow


def drive(window: InFlightWindow, seconds_per_round: dict[int, float], rounds: int) -> list[int]:
    """Feed ``rounds`` rounds of answers, a round at window size n taking ``seconds_per_round[n]``."""
    now, sizes = 0.0, []
    for _ in range(rounds):
        size = window.size
        answers = 2 * size
        for i in range(answers):
            window.answered(now + seconds_per_round[size] * (i + 1) / answers)
        now += seconds_per_round[size]
        sizes.append(window.size)
    return sizes


def test_a_far_endpoint_earns_a_wide_window() -> None:
    # latency-bound: a round of 2n answers takes two round trips whatever n is, so rate doubles with n
    window = InFlightWindow(start=16, limit=128)
    window._began = 0.0
    assert drive(window, {16: 0.04, 32: 0.04, 64: 0.04, 128: 0.04}, 5) == [32, 64, 128, 128, 128]
    assert window.settled and window.size == 128


def test_a_busy_loopback_keeps_a_narrow_window() -> None:
    # CPU-bound: a round of 2n answers takes time proportional to n, the rate never improves
    window = InFlightWindow(start=16, limit=128)
    window._began = 0.0
    sizes = drive(window, {16: 0.032, 32: 0.064, 64: 0.128}, 4)
    assert sizes == [32, 16, 16, 16] and window.settled


def test_a_fixed_window_never_moves() -> None:
    window = InFlightWindow(start=8, limit=8)
    window._began = 0.0
    assert drive(window, {8: 0.01}, 3) == [8, 8, 8]
