#!/usr/bin/env python3
"""statsforecast's AutoETS and AutoARIMA on M3, scored as `recflow bench forecast` scores.

Reads m3_long.csv (series_id, t, value, split) and m3_meta.csv (series_id, period, ...)
from the folder given as the first argument, forecasts each series' test points from its
train points with the official horizon, and prints one JSON object to stdout:

  {"statsforecast_version": "...", "n_jobs": 2, "warmup_s": ...,
   "models": {"AutoETS": {"YEARLY": {"smape": .., "mase": .., "n": ..}, ..., "ALL": {..},
                          "ms_per_1000": ..}, "AutoARIMA": {...}}}

sMAPE and MASE follow src/forecast/metrics.rs and src/bench/forecast.rs: sMAPE is the mean
over points of 200|y-f|/(|y|+|f|) (0 when both are 0), averaged over series; MASE is the
forecast's MAE over the in-sample MAE of the seasonal naive at lag m (NaN when the history
has no more than m points or that MAE is 0), averaged over the series where it is finite.
Time is fitting plus forecasting, after a warm-up on a few series that is reported apart.
Progress goes to stderr. Install with scripts/statsforecast-env.
"""

import json
import math
import os
import sys
import time
import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd

try:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS
except ImportError as e:  # recflow maps this exit code to "run scripts/statsforecast-env".
    print(f"statsforecast is not installed for {sys.executable}: {e}", file=sys.stderr)
    sys.exit(3)

# AutoARIMA warns on every series it differences three times; that is noise here.
warnings.filterwarnings("ignore", category=UserWarning, module="statsforecast")

SEASON = {"QUARTERLY": 4, "MONTHLY": 12}
ORDER = ["YEARLY", "QUARTERLY", "MONTHLY", "OTHER"]
MODELS = {
    "AutoETS": lambda m: AutoETS(season_length=m),
    "AutoARIMA": lambda m: AutoARIMA(season_length=m),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def smape(actual, forecast):
    d = np.abs(actual) + np.abs(forecast)
    safe = np.where(d == 0.0, 1.0, d)
    return float(np.mean(np.where(d == 0.0, 0.0, 200.0 * np.abs(actual - forecast) / safe)))


def mase(history, actual, forecast, m):
    m = max(m, 1)
    if len(history) <= m:
        return math.nan
    scale = float(np.mean(np.abs(history[m:] - history[:-m])))
    mae = float(np.mean(np.abs(actual - forecast)))
    return math.nan if scale == 0.0 else mae / scale


def summarise(scores):
    """Mean sMAPE over all series, mean MASE over the finite ones (as recflow does)."""
    n = len(scores)
    smapes = [s for s, _ in scores]
    mases = [m for _, m in scores if math.isfinite(m)]
    return {
        "smape": finite_or_none(sum(smapes) / max(n, 1)),
        "mase": finite_or_none(sum(mases) / max(len(mases), 1)),
        "n": n,
    }


def finite_or_none(x):
    """JSON has no NaN; recflow reads null back as NaN."""
    return x if math.isfinite(x) else None


def run(sf_model, train, h, m, n_jobs):
    sf = StatsForecast(models=[sf_model], freq=1, n_jobs=n_jobs)
    out = sf.forecast(df=train, h=h)
    if "unique_id" not in out.columns:
        out = out.reset_index()
    col = [c for c in out.columns if c not in ("unique_id", "ds")][0]
    out = out.sort_values(["unique_id", "ds"])
    return {uid: g[col].to_numpy() for uid, g in out.groupby("unique_id", sort=False)}


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/m3"
    n_jobs = len(os.sched_getaffinity(0))
    meta = pd.read_csv(os.path.join(folder, "m3_meta.csv"), dtype={"series_id": str})
    period = dict(zip(meta["series_id"], meta["period"]))
    long = pd.read_csv(os.path.join(folder, "m3_long.csv"), dtype={"series_id": str})
    long = long.rename(columns={"series_id": "unique_id", "t": "ds", "value": "y"})
    long["period"] = long["unique_id"].map(period).fillna("")
    train = long[long["split"] != "test"]
    test = long[long["split"] == "test"]
    histories = {uid: g["y"].to_numpy(dtype=float) for uid, g in train.groupby("unique_id")}
    actuals = {uid: g["y"].to_numpy(dtype=float) for uid, g in test.groupby("unique_id")}
    groups = {}
    for uid, p in sorted({(u, period.get(u, "")) for u in histories}):
        groups.setdefault(p, []).append(uid)
    log(f"statsforecast {version('statsforecast')}: {len(histories)} series, n_jobs={n_jobs}")

    # Warm-up (imports, first-call compilation and caches) on a few series per frequency.
    started = time.perf_counter()
    for p, ids in groups.items():
        m = SEASON.get(p, 1)
        few = train[train["unique_id"].isin(ids[:4])][["unique_id", "ds", "y"]]
        h = len(actuals[ids[0]])
        for make in MODELS.values():
            run(make(m), few, h, m, 1)
    warmup_s = time.perf_counter() - started
    log(f"warm-up {warmup_s:.1f} s")

    results = {}
    for name, make in MODELS.items():
        per_group = {}
        all_scores = []
        elapsed = 0.0
        for p in [g for g in ORDER if g in groups] + [g for g in groups if g not in ORDER]:
            ids = groups[p]
            m = SEASON.get(p, 1)
            scores = []
            # Every M3 frequency has one official horizon; group by it anyway.
            by_h = {}
            for uid in ids:
                by_h.setdefault(len(actuals.get(uid, [])), []).append(uid)
            for h, hids in by_h.items():
                df = train[train["unique_id"].isin(hids)][["unique_id", "ds", "y"]]
                started = time.perf_counter()
                fc = run(make(m), df, h, m, n_jobs)
                elapsed += time.perf_counter() - started
                for uid in hids:
                    f = fc[uid][:h]
                    y = actuals.get(uid, np.array([]))
                    scores.append((smape(y, f), mase(histories[uid], y, f, m)))
            per_group[p] = summarise(scores)
            all_scores += scores
            log(f"{name} {p}: {per_group[p]} ({elapsed:.1f} s so far)")
        per_group["ALL"] = summarise(all_scores)
        per_group["ms_per_1000"] = elapsed * 1000.0 / max(len(all_scores), 1) * 1000.0
        results[name] = per_group

    json.dump(
        {
            "statsforecast_version": version("statsforecast"),
            "n_jobs": n_jobs,
            "warmup_s": warmup_s,
            "models": results,
        },
        sys.stdout,
        allow_nan=False,
    )
    print()


if __name__ == "__main__":
    main()
