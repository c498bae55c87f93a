"""The seasonal detector: seasons learned, level shifts accepted once, surprises ordered, both directions, replay."""
from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from agents.score.config import ScoreConfig
from agents.score.detector import (
    LEARNED,
    LEVEL_SHIFT,
    NOT_LEARNED,
    Detector,
    error_surprise,
    quartiles,
    replayed,
    surprise,
)
from agents.score.features import WindowFeatures
from tests.support.score_points import CONFIG, T0, jittered_history

NS_PER_S = 1_000_000_000
# Ten-minute windows, one daily profile bin each: a day is 144 windows.
DAILY = ScoreConfig(window_s=600, season_bins=144, seasons_s=(86_400, 604_800), history_windows=30,
                    min_history_windows=10)
DAY = 144


def at(config: ScoreConfig, w: int) -> int:
    return T0 + w * config.window_s * NS_PER_S


def trained(config: ScoreConfig = CONFIG, windows: int = 40) -> Detector:
    detector = Detector(config)
    for w, f in enumerate(jittered_history(windows)):
        detector.learn(f, detector.score(f, at(config, w)), at(config, w))
    return detector


@pytest.mark.parametrize("z, two_sided, expected", [
    (0.0, False, 0.30103), (-3.0, False, 0.000587), (3.0, False, 2.86966), (-3.0, True, 2.56863),
    (40.0, False, 349.4), (400.0, False, 34_770.0)],
    ids=["zero", "below-one-sided", "three-sigma", "three-below-two-sided", "z40", "z400"])
def test_surprise_is_minus_log10_of_the_tail(z: float, two_sided: bool, expected: float) -> None:
    assert surprise(z, two_sided) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("values, expected", [([5.0], (5.0, 5.0, 5.0)), ([1.0, 2.0, 3.0, 4.0, 5.0], (2.0, 3.0, 4.0)),
                                              ([4.0, 1.0, 3.0, 2.0], (1.75, 2.5, 3.25))],
                         ids=["one", "odd", "unsorted-even"])
def test_quartiles_interpolate(values: list[float], expected: tuple[float, float, float]) -> None:
    assert quartiles(values) == pytest.approx(expected)


def cycle(feature: str) -> Callable[[int, random.Random], WindowFeatures]:
    def make(w: int, rng: random.Random) -> WindowFeatures:
        phase = math.sin(2 * math.pi * w / DAY)
        if feature == "throughput":  # 200 to 1800 spans a window over the day
            spans = max(0, round(rng.gauss(1000 + 800 * phase, math.sqrt(1000 + 800 * phase))))
            return WindowFeatures(spans, 0, 50.0, 80.0)
        latency = 50.0 * math.exp(0.8 * phase + rng.gauss(0, 0.03))  # x0.45 to x2.2 over the day
        return WindowFeatures(500, 0, latency, latency * 1.6)
    return make


@pytest.mark.parametrize("feature", ["throughput", "latency_p95"], ids=["traffic-cycle", "latency-cycle"])
def test_a_daily_cycle_is_learned_and_not_flagged(feature: str) -> None:
    detector, rng, make = Detector(DAILY), random.Random(3), cycle(feature)
    late = []
    for w in range(10 * DAY):
        f = make(w, rng)
        score = detector.score(f, at(DAILY, w))
        detector.learn(f, score, at(DAILY, w))
        if w >= 4 * DAY:
            late.append(score.score)
    assert max(late) < DAILY.threshold, max(late)
    # The cycle is in the profile, not in the level: the profile spans most of the swing.
    profile = detector.seasons[feature][0]
    assert max(profile) - min(profile) > (0.6 if feature == "latency_p95" else 1.0)


def test_a_persisting_level_shift_alerts_then_is_learned_with_one_annotation() -> None:
    config = CONFIG.replace(max_frozen_windows=12)
    detector = trained(config)
    decisions, scores = [], []
    for w in range(40, 80):
        f = WindowFeatures(40, 1, 100.0, 160.0)  # latency doubled, for good
        score = detector.score(f, at(config, w))
        decisions.append(detector.learn(f, score, at(config, w)))
        scores.append(score.score)
    assert decisions[:12] == [NOT_LEARNED] * 11 + [LEVEL_SHIFT]
    assert decisions.count(LEVEL_SHIFT) == 1 and set(decisions[12:]) == {LEARNED}
    assert min(scores[:12]) >= config.threshold and max(scores[12:]) < config.threshold


@pytest.mark.parametrize("feature, window", [
    ("latency_p95", lambda k: WindowFeatures(40, 1, 50.0, 80.0 * 2 ** k)),
    ("latency_p50", lambda k: WindowFeatures(40, 1, 50.0 / 2 ** (k / 6), 80.0)),  # to 1.6 ms
    ("throughput", lambda k: WindowFeatures(40 * 2 ** k, 1, 50.0, 80.0)),
    ("error_rate", lambda k: WindowFeatures(40, 5 + k, 50.0, 80.0)),
], ids=["latency-up", "latency-down", "traffic-up", "errors-up"])
def test_scores_are_strictly_ordered_up_to_the_extremes(feature: str,
                                                         window: Callable[[int], WindowFeatures]) -> None:
    detector = trained()
    scores = [detector.score(window(k), at(CONFIG, 40)) for k in range(1, 31)]
    assert all(s.reason == feature for s in scores if s.score >= CONFIG.threshold)
    values = [s.score for s in scores]
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values
    assert values[-1] >= CONFIG.threshold and math.isfinite(values[-1])


@pytest.mark.parametrize("two_sided, anomalous", [
    (("latency_p50", "latency_p95", "throughput"), True), (("throughput",), False)],
    ids=["two-sided-latency", "latency-up-only"])
def test_a_latency_drop_scores_when_latency_is_two_sided(two_sided: tuple[str, ...], anomalous: bool) -> None:
    config = CONFIG.replace(two_sided=two_sided)
    detector = trained(config)
    score = detector.score(WindowFeatures(40, 1, 10.0, 16.0), at(config, 40))  # five times faster
    assert (score.score >= config.threshold) is anomalous
    if anomalous:
        assert score.reason.startswith("latency") and score.z[score.reason] < 0 and score.onset


def test_errors_score_from_the_binomial_tail_and_do_not_tie_when_it_underflows() -> None:
    common, rare = error_surprise(2, 20, 0.0, 0.0, 0.01)[0], error_surprise(8, 20, 0.0, 0.0, 0.01)[0]
    assert 1.0 < common < 2.5 and rare > 6
    extreme = [error_surprise(k, 1000, 0.01, 0.0, 0.01)[0] for k in (400, 600, 800, 1000)]
    assert all(b > a for a, b in zip(extreme, extreme[1:], strict=False)) and extreme[0] > 280


def test_an_episode_has_one_onset() -> None:
    detector = trained()
    onsets = []
    for w in range(40, 45):
        f = WindowFeatures(40, 1, 50.0, 400.0)
        score = detector.score(f, at(CONFIG, w))
        detector.learn(f, score, at(CONFIG, w))
        onsets.append(score.onset)
    assert onsets == [True, False, False, False, False]


def test_restore_rebuilds_the_same_detector() -> None:
    config = CONFIG.replace(max_frozen_windows=4, season_bins=10, seasons_s=(200, 1400))
    live, stored = Detector(config), []
    windows = (jittered_history(30) + [WindowFeatures(40, 1, 52.0, 400.0)] * 2 + jittered_history(6, seed=9)
               + [WindowFeatures(9, 0, 50.0, 80.0)] + jittered_history(3, seed=7)  # a sparse window
               + [WindowFeatures(80, 2, 90.0, 150.0)] * 6 + jittered_history(5, seed=4))
    for w, f in enumerate(windows):
        stored.append((f, live.learn(f, live.score(f, at(config, w)), at(config, w)), at(config, w)))
    assert {d for _, d, _ in stored} == {LEARNED, NOT_LEARNED, LEVEL_SHIFT}
    replay = replayed(config, stored)
    assert vars(replay) == vars(live)
    probe = WindowFeatures(40, 5, 60.0, 120.0)
    assert replay.score(probe, at(config, 99)) == live.score(probe, at(config, 99))


def test_no_score_while_warming_up() -> None:
    detector = Detector(CONFIG)
    for w, f in enumerate(jittered_history(CONFIG.min_history_windows)):
        score = detector.score(f, at(CONFIG, w))
        assert score.warming and score.score == 0.0
        assert detector.learn(f, score, at(CONFIG, w)) == LEARNED
    assert not detector.score(WindowFeatures(40, 1, 50.0, 80.0), at(CONFIG, 99)).warming
