"""The anomaly detector of one key: seasonal baselines and calibrated tail probabilities (pure).

Latency (p50, p95) and throughput (spans per window, as log(1 + x)) are modelled in log
space, where ratios are what matter, a daily cycle has one shape at any level and bursty
traffic spreads alike at its peak and at night; each is
modelled as ``level + daily[bin] + weekly[bin]``: the seasonal profiles (``seasons_s``,
each in ``season_bins`` bins) are learned from the series itself by exponential
smoothing, so a daily or weekly cycle becomes the expectation instead of an anomaly. The
residual's scale is a smoothed mean absolute residual (clipped, so outliers that are
learned cannot inflate it), with floors: a 10 % latency change, ``throughput_floor_ratio``
of the expected traffic and its Poisson spread (1 / sqrt(x) in log space). The error rate keeps the exact
binomial tail against the median error rate of the learned windows.

Scores are surprises, ``-log10 p`` of a tail probability (Gaussian tail of the residual
z; binomial tail for errors): they do not saturate (z = 40 and z = 400 score 349 and
34,770), rank the strongest anomalies, and the alert threshold is in the same terms
(threshold 6: p = 1e-6). Features in ``two_sided`` score both directions (p doubled), so
a latency drop is visible; the others only upwards.

Onset and continuation: windows scored anomalous are not learned, so an incident does not
become the baseline and stays one episode (one alert, agents/alerting.py). A change that
lasts ``max_frozen_windows`` windows is a new level: the level is reset to those windows
(learned = LEVEL_SHIFT, the window's row says so once) and scoring goes quiet.

Evidence over several windows: the last ``evidence_windows`` windows that did not stand out
on their own are also tested together (all at least min |z| off, in one direction or in
either), so a lasting shift or a variance change too small for one window is seen; the
spread follows four times slower than the level, so a learned shift does not first widen
it until it no longer stands out.

Why not a library model: river's ``time_series.HoltWinters`` holds one season per model
(18 µs a window and series here) and ``SNARIMAX`` costs 135 µs a window and series;
statsmodels' MSTL is an offline fit (1.1 s for two weeks of one series). None of them
gives a residual spread, a tail probability or a state that a restart can rebuild from
the anomaly rows, which the stage needs; the model here is a few dozen float updates a
window (measured on the shared 2-core machine, busy).

State is the replay of the stored (features, learned) sequence: ``restore`` applies a
stored decision exactly as ``learn`` made it, so a restart rebuilds the same detector
from the rows agents/score/state.py reads back. The robust z-score detector this
replaced is kept, for comparison only, in benchmarks/anomaly_detection.py."""
from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.special import bdtrc, log_ndtr

from agents.score.config import FEATURES, ScoreConfig
from agents.score.features import WindowFeatures

SERIES = ("latency_p50", "latency_p95", "throughput")  # modelled as level + seasons
IQR_TO_SIGMA = 1.349
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)
LN10 = math.log(10)
_LN2 = math.log(2)
_SQRT2 = math.sqrt(2)
NS_PER_S = 1_000_000_000
NOT_LEARNED, LEARNED, LEVEL_SHIFT = 0, 1, 2  # the Learned column of an anomaly row
_CLIP_SIGMAS = 3.0  # residuals are clipped here before they move level, seasons and scale
_EVIDENCE_CLIP = 4.0  # z-scores are clipped here before they count as evidence over several windows
_MAX_Z = 1e12  # beyond this a z is a division by a floor, not a measurement
_EXACT_TAIL = 1e-280  # below this the binomial tail is approximated (bdtrc underflows)


@dataclass(frozen=True)
class Score:
    """A window's surprise (-log10 p, >= 0), the feature behind it, each feature's signed z
    and expected value; ``onset`` is the first anomalous window of an episode."""

    score: float
    reason: str
    z: dict[str, float]
    baseline: dict[str, float | None]
    warming: bool
    onset: bool = False


def log_upper_tail(z: float) -> float:
    """ln P(Z >= z) for a standard normal Z, accurate far into the tail (no underflow)."""
    if z < 25.0:  # math.erfc is exact enough here and far cheaper than a scipy call
        return math.log(0.5 * math.erfc(z / _SQRT2))
    return float(log_ndtr(-z))


def surprise(z: float, two_sided: bool) -> float:
    """-log10 of the Gaussian tail beyond ``z`` (upper tail; both tails when two_sided).

    Strictly increasing in z (in |z| when two_sided) up to |z| = 1e12, never saturating."""
    if two_sided:
        z = abs(z)
    z = min(z, _MAX_Z)
    log_p = log_upper_tail(z) + (_LN2 if two_sided else 0.0)
    return max(0.0, -log_p / LN10)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(q25, median, q75) with linear interpolation; values must not be empty."""
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        pos = q * last
        low = math.floor(pos)
        high = min(low + 1, last)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


def _log_binomial_tail(errors: int, spans: int, rate: float) -> float:
    """ln P(X >= errors) for X ~ Binomial(spans, rate), also where the tail underflows."""
    tail = float(bdtrc(errors - 1, spans, rate))
    if tail >= _EXACT_TAIL:
        return math.log(tail)
    q = errors / spans
    if q >= 1.0:
        return spans * math.log(rate)
    # Bahadur-Rao: ln P ~ -n KL(q || p) - ln((1 - r) sqrt(2 pi n q (1 - q))), r = p(1-q) / (q(1-p)).
    kl = q * math.log(q / rate) + (1 - q) * math.log((1 - q) / (1 - rate))
    r = rate * (1 - q) / (q * (1 - rate))
    return -spans * kl - math.log((1 - r) * math.sqrt(2 * math.pi * spans * q * (1 - q)))


def error_surprise(errors: int, spans: int, median: float, iqr_sigma: float, floor: float) -> tuple[float, float]:
    """(surprise, z) of ``errors`` of ``spans`` against a baseline error rate ``median``.

    The exact binomial tail P(X >= errors) at max(median, floor): with few spans or rare
    errors the normal approximation calls two errors in twenty spans a 4.5-sigma event
    when it happens in 1.7 % of windows. When the history itself varies more than sampling
    explains, its robust sigma caps the surprise (as a Gaussian z)."""
    if spans <= 0 or errors / spans <= median:
        return 0.0, 0.0
    bits = max(0.0, -_log_binomial_tail(errors, spans, max(median, floor)) / LN10)
    if iqr_sigma > 0:
        z = (errors / spans - median) / iqr_sigma
        return min(bits, surprise(z, False)), z
    # The z of the same tail, for the row's z column (reading only).
    return bits, math.sqrt(max(0.0, 2 * bits * LN10))


class Detector:
    """Seasonal baselines, scoring and level-shift acceptance of one (tenant, service, operation) key."""

    def __init__(self, config: ScoreConfig) -> None:
        self.config = config
        # Learned windows (latest history_windows): warm-up, error-rate baseline, zero-fill.
        self.history: deque[WindowFeatures] = deque(maxlen=config.history_windows)
        self.level: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        self.seen: dict[str, int] = dict.fromkeys(SERIES, 0)  # learned values of each series
        # Each season in season_bins bins (no more than it has windows); a bin learns about
        # season_alpha of what it sees in one visit, however many windows a visit holds.
        self.bins = [max(1, min(config.season_bins, s // config.window_s)) for s in config.seasons_s]
        self.season_alphas = [1 - (1 - config.season_alpha) ** (n * config.window_s / s)
                              for n, s in zip(self.bins, config.seasons_s, strict=True)]
        self.seasons = {name: [array("d", bytes(8 * n)) for n in self.bins] for name in SERIES}
        self.frozen: deque[tuple[WindowFeatures, int]] = deque(maxlen=config.max_frozen_windows)
        self.alpha = 2.0 / (config.history_windows + 1)
        self.two_sided = frozenset(config.two_sided)
        # (learned windows with min_spans spans, their median error rate, its robust sigma)
        self.errors: tuple[int, float, float] = (0, 0.0, 0.0)
        # The clipped z of the last evidence_windows - 1 scored windows of each series.
        self.evidence = {name: deque[float](maxlen=max(1, config.evidence_windows - 1)) for name in SERIES}

    # -- the model ---------------------------------------------------------------------------

    def _values(self, f: WindowFeatures) -> dict[str, float]:
        """The modelled value of each series ``f`` has (latency only with min_spans spans)."""
        out = {"throughput": math.log1p(f.spans)}
        if f.spans >= self.config.min_spans:
            floor = math.log(self.config.latency_floor_ms)
            for name, value in (("latency_p50", f.p50_ms), ("latency_p95", f.p95_ms)):
                out[name] = max(math.log(value), floor) if value else floor
        return out

    def _slots(self, start_ns: int) -> list[int]:
        at_s = start_ns // NS_PER_S
        return [at_s % season * n // season for n, season in zip(self.bins, self.config.seasons_s, strict=True)]

    def _seasonal(self, name: str, slots: list[int]) -> float:
        total = 0.0
        for profile, slot in zip(self.seasons[name], slots, strict=True):
            total += profile[slot]
        return total

    def _sigma(self, name: str, expected: float) -> float:
        c = self.config
        if name == "throughput":
            # Poisson counts around x spread by 1 / sqrt(x) in log space.
            floor = max(math.log1p(c.throughput_floor_ratio), 1 / math.sqrt(max(math.expm1(expected), 1.0)))
        else:
            floor = math.log1p(c.latency_floor_ratio)
        return max(self.scale[name], floor)

    def expected(self, name: str, start_ns: int) -> float | None:
        """The expected value of series ``name`` (model units) at ``start_ns``; None while warming."""
        if name not in self.level:
            return None
        return self.level[name] + self._seasonal(name, self._slots(start_ns))

    def _error_baseline(self) -> None:
        dense = [h.errors / h.spans for h in self.history if h.spans >= self.config.min_spans]
        if dense:
            q25, med, q75 = quartiles(dense)
            self.errors = (len(dense), med, (q75 - q25) / IQR_TO_SIGMA)
        else:
            self.errors = (0, 0.0, 0.0)

    # -- scoring -----------------------------------------------------------------------------

    def score(self, f: WindowFeatures, start_ns: int) -> Score:
        """Score ``f``, the window starting at ``start_ns``, against what was learned (0 while
        fewer than min_history_windows windows were learned)."""
        c = self.config
        z = dict.fromkeys(FEATURES, 0.0)
        baseline: dict[str, float | None] = dict.fromkeys(FEATURES)
        if len(self.history) < c.min_history_windows:
            return Score(0.0, "", z, baseline, True)
        bits = dict.fromkeys(FEATURES, 0.0)
        for name, (value, expected) in self._residuals(f, start_ns).items():
            z[name] = (value - expected) / self._sigma(name, expected)
            bits[name] = max(surprise(z[name], name in self.two_sided), self._persistence(name, z[name]))
            baseline[name] = math.expm1(expected) if name == "throughput" else math.exp(expected)
        dense, median, sigma = self.errors
        if f.spans >= c.min_spans and dense >= c.min_history_windows:
            baseline["error_rate"] = median
            bits["error_rate"], z["error_rate"] = error_surprise(f.errors, f.spans, median, sigma,
                                                                 c.error_rate_floor)
        reason = max(FEATURES, key=lambda n: bits[n])
        best = round(bits[reason], 6)
        onset = best >= c.threshold and not self.frozen
        return Score(best, reason if best > 0 else "", z, baseline, False, onset)

    def _residuals(self, f: WindowFeatures, start_ns: int) -> dict[str, tuple[float, float]]:
        """(value, expected value) of each series of ``f`` with a baseline."""
        slots = self._slots(start_ns)
        return {name: (value, self.level[name] + self._seasonal(name, slots))
                for name, value in self._values(f).items() if name in self.level}

    def _persistence(self, name: str, z: float) -> float:
        """The surprise of the last evidence_windows windows together, this one the last: all
        of them at least min |z| off in one direction (a lasting shift too small for one
        window), or in either (a variance change). This window must take part, so an episode
        ends with its last anomalous window, and one spike is not a lasting change."""
        windows = self.config.evidence_windows
        recent = self.evidence[name]
        if windows < 2 or len(recent) < windows - 1:
            return 0.0
        values = [*recent, max(-_EVIDENCE_CLIP, min(_EVIDENCE_CLIP, z))]
        least = min(abs(v) for v in values)
        log_tail = log_upper_tail(least)
        spread = -windows * (log_tail + _LN2)  # P(every |z| >= least) = (2 Phi(-least))^n
        shift = 0.0
        if all(v > 0 for v in values) or (name in self.two_sided and all(v < 0 for v in values)):
            shift = -windows * log_tail - (_LN2 if name in self.two_sided else 0.0)
        return max(0.0, (max(shift, spread) - _LN2) / LN10)  # two tests of the same windows

    # -- learning ----------------------------------------------------------------------------

    def learn(self, f: WindowFeatures, score: Score, start_ns: int) -> int:
        """Learn ``f`` unless it scored anomalous; return what was done (the Learned column):
        LEARNED, NOT_LEARNED, or LEVEL_SHIFT when this window completes max_frozen_windows
        anomalous windows in a row and their level becomes the new baseline."""
        if score.score < self.config.threshold:
            decision = LEARNED
        elif len(self.frozen) + 1 >= self.config.max_frozen_windows:
            decision = LEVEL_SHIFT
        else:
            decision = NOT_LEARNED
        # The z of each series that had a baseline, as restore computes them.
        z = {name: score.z[name] for name in SERIES if score.baseline[name] is not None}
        self._apply(f, decision, start_ns, None if score.warming else z)
        return decision

    def restore(self, f: WindowFeatures, decision: int, start_ns: int) -> None:
        """Apply one window's stored decision (oldest first) exactly as ``learn`` made it."""
        z = None
        if len(self.history) >= self.config.min_history_windows:  # the window was scored
            z = {name: (value - expected) / self._sigma(name, expected)
                 for name, (value, expected) in self._residuals(f, start_ns).items()}
        self._apply(f, decision, start_ns, z)

    def _apply(self, f: WindowFeatures, decision: int, start_ns: int, z: dict[str, float] | None) -> None:
        # Windows that stand out on their own are no evidence of a subtle change: an episode
        # held up by them ends with them instead of dragging on through the evidence.
        for name, value in (z or {}).items():
            if name in self.evidence and surprise(value, name in self.two_sided) < self.config.threshold:
                self.evidence[name].append(max(-_EVIDENCE_CLIP, min(_EVIDENCE_CLIP, value)))
        if decision == NOT_LEARNED:
            self.frozen.append((f, start_ns))
        elif decision == LEVEL_SHIFT:
            self.frozen.append((f, start_ns))
            self._shift()
        else:
            self.frozen.clear()
            self._update(f, start_ns)

    def _update(self, f: WindowFeatures, start_ns: int) -> None:
        self.history.append(f)
        self._error_baseline()
        values = self._values(f)
        slots = self._slots(start_ns)
        for name, value in values.items():
            self.seen[name] += 1
            if name not in self.level:
                self._initialise(name)
                continue
            expected = self.level[name] + self._seasonal(name, slots)
            sigma = self._sigma(name, expected)
            residual = max(-_CLIP_SIGMAS * sigma, min(_CLIP_SIGMAS * sigma, value - expected))
            self.level[name] += self.alpha * residual
            for profile, slot, rate in zip(self.seasons[name], slots, self.season_alphas, strict=True):
                profile[slot] += rate * residual
            # The spread follows four times slower than the level: a lasting shift that is
            # learned must not first widen the spread until it no longer stands out.
            self.scale[name] += self.alpha / 4 * (abs(residual) * MEAN_ABS_TO_SIGMA - self.scale[name])

    def _initialise(self, name: str) -> None:
        """Level and scale of ``name`` from the learned windows, once there are enough."""
        if self.seen[name] < self.config.min_history_windows:
            return
        values = [v for h in self.history if (v := self._values(h).get(name)) is not None]
        q25, med, q75 = quartiles(values)
        self.level[name] = med
        self.scale[name] = (q75 - q25) / IQR_TO_SIGMA

    def _shift(self) -> None:
        """Take the frozen windows' level as the new normal (seasons and scale are kept)."""
        for name in SERIES:
            if name not in self.level:
                continue
            residuals = [v - self._seasonal(name, self._slots(at)) for f, at in self.frozen
                         if (v := self._values(f).get(name)) is not None]
            if residuals:
                self.level[name] = quartiles(residuals)[1]
        self.history.extend(f for f, _ in self.frozen)
        self._error_baseline()
        self.frozen.clear()
        for recent in self.evidence.values():
            recent.clear()


def replayed(config: ScoreConfig, windows: Iterable[tuple[WindowFeatures, int, int]]) -> Detector:
    """A detector rebuilt from stored (features, decision, start_ns) windows, oldest first."""
    detector = Detector(config)
    for f, decision, start_ns in windows:
        detector.restore(f, decision, start_ns)
    return detector
