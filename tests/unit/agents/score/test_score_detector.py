"""The robust z-score detector: the score scale, which feature drives a score, warm-up, learning."""
from __future__ import annotations

import math

import pytest

from agents.score.detector import RobustDetector, quartiles, z_to_score
from agents.score.features import WindowFeatures
from tests.support.score_points import CONFIG, jittered_history


@pytest.mark.parametrize("z, expected", [(-3.0, 0.0), (0.0, 0.0), (2.0, 0.2), (4.0, 0.5), (8.0, 0.8),
                                         (math.inf, 1.0)],
                         ids=["negative", "zero", "half-of-z-half", "z-half", "double", "infinite"])
def test_z_maps_into_zero_one(z: float, expected: float) -> None:
    assert z_to_score(z, 4.0) == pytest.approx(expected)


@pytest.mark.parametrize("values, expected", [([5.0], (5.0, 5.0, 5.0)), ([1.0, 2.0, 3.0, 4.0, 5.0], (2.0, 3.0, 4.0)),
                                              ([4.0, 1.0, 3.0, 2.0], (1.75, 2.5, 3.25))],
                         ids=["one", "odd", "unsorted-even"])
def test_quartiles_interpolate(values: list[float], expected: tuple[float, float, float]) -> None:
    assert quartiles(values) == pytest.approx(expected)


def trained() -> RobustDetector:
    return RobustDetector(CONFIG, jittered_history(CONFIG.history_windows))


@pytest.mark.parametrize("current, reason, anomalous", [
    (WindowFeatures(41, 1, 51.0, 82.0), "", False),
    (WindowFeatures(40, 1, 52.0, 400.0), "latency_p95", True),
    (WindowFeatures(40, 1, 250.0, 260.0), "latency_p50", True),
    (WindowFeatures(40, 16, 50.0, 80.0), "error_rate", True),
    (WindowFeatures(40, 3, 50.0, 80.0), "error_rate", False),
    (WindowFeatures(6, 0, 50.0, 80.0), "throughput", True),
    (WindowFeatures(0, 0, None, None), "throughput", True),
    (WindowFeatures(160, 4, 50.0, 80.0), "throughput", True),
    (WindowFeatures(40, 0, 5.0, 8.0), "throughput", False),
    (WindowFeatures(9, 9, 900.0, 900.0), "throughput", True),
], ids=["normal", "p95-step", "p50-step", "error-burst", "a-few-errors", "traffic-drop", "no-traffic", "traffic-spike",
        "faster-is-fine", "sparse-window-latency-not-scored"])
def test_the_feature_that_moved_drives_the_score(current: WindowFeatures, reason: str, anomalous: bool) -> None:
    score = trained().score(current)
    assert 0.0 <= score.score <= 1.0
    assert (score.score >= CONFIG.threshold) is anomalous
    if anomalous:
        assert score.reason == reason
    if current.spans < CONFIG.min_spans:
        assert score.z["latency_p95"] == 0.0 and score.z["error_rate"] == 0.0


def test_no_score_while_warming_up() -> None:
    detector = RobustDetector(CONFIG)
    for f in jittered_history(CONFIG.min_history_windows):
        score = detector.score(f)
        assert score.warming and score.score == 0.0
        assert detector.learn(f, score)
    assert not detector.score(WindowFeatures(40, 1, 50.0, 80.0)).warming


def test_a_flat_baseline_does_not_make_every_wobble_an_anomaly() -> None:
    detector = RobustDetector(CONFIG, [WindowFeatures(40, 0, 50.0, 80.0)] * CONFIG.history_windows)
    assert detector.score(WindowFeatures(43, 1, 53.0, 86.0)).score < CONFIG.threshold


def test_anomalous_windows_are_not_learned_until_the_level_lasts() -> None:
    config = CONFIG.replace(max_frozen_windows=3)
    detector = RobustDetector(config, jittered_history(config.history_windows))
    slow = WindowFeatures(40, 1, 52.0, 400.0)
    learned = [detector.learn(slow, detector.score(slow)) for _ in range(5)]
    assert learned == [False, False, False, True, False]


def test_restore_rebuilds_the_same_detector() -> None:
    live = RobustDetector(CONFIG)
    replay = RobustDetector(CONFIG)
    windows = jittered_history(30) + [WindowFeatures(40, 1, 52.0, 400.0)] * 2 + jittered_history(3, seed=9)
    for f in windows:
        replay.restore(f, live.learn(f, live.score(f)))
    assert list(replay.history) == list(live.history) and replay.frozen == live.frozen
    probe = WindowFeatures(40, 5, 60.0, 120.0)
    assert replay.score(probe) == live.score(probe)


@pytest.mark.parametrize("errors, spans, median, iqr_sigma, low, high", [
    (2, 20, 0.0, 0.0, 1.5, 2.5),
    (8, 20, 0.0, 0.0, 6.0, math.inf),
    (1, 40, 0.05, 0.0, 0.0, 0.0),
    (20, 40, 0.05, 0.0, 8.0, math.inf),
    (20, 40, 0.05, 0.2, 2.0, 2.5),
], ids=["two-in-twenty-is-common", "eight-in-twenty-is-not", "below-baseline", "burst", "noisy-history-caps-z"])
def test_error_rate_z_uses_the_binomial_tail(errors: int, spans: int, median: float, iqr_sigma: float, low: float,
                                             high: float) -> None:
    from agents.score.detector import error_z

    assert low <= error_z(errors, spans, median, iqr_sigma, floor=0.01) <= high
