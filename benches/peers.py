#!/usr/bin/env python3
"""Peer recommenders for `recflow bench recipes`: EASE (closed form, numpy)
and ALS from the `implicit` package, run on the split recflow wrote.

Each peer is tuned on the validation split (carved from the training part,
never from the test users' held-out items), retrained on the whole training
part with the best setting, and writes its top-25 items for every test user.
recflow computes the metrics with its own code, so both sides are scored
identically.

Usage: peers.py DIR   (DIR holds the files recflow wrote; results go there)
"""
import json
import os
import resource
import sys
import time

import numpy as np
import scipy.sparse as sp

K = 25


def load_pairs(path, n_users, n_items):
    data = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    x = sp.csr_matrix((np.ones(len(data), dtype=np.float32), (data[:, 0], data[:, 1])), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicates summed by csr_matrix; binarise
    return x


def load_users(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ndcg10(ranked, relevant):
    dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(ranked[:10]) if item in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def top(scores, given):
    scores = scores.copy()
    scores[list(given)] = -np.inf
    idx = np.argpartition(-scores, K)[:K]
    return [int(i) for i in idx[np.argsort(-scores[idx], kind="stable")]]


def ease_fit(x, l2):
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def ease_recs(x, b, users):
    out = []
    for u in users:
        scores = np.asarray(x[u["user"]] @ b).ravel()
        out.append(top(scores, u["given"]))
    return out


def als_fit(x, factors, reg, alpha, iterations):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors, regularization=reg, alpha=alpha, iterations=iterations,
        calculate_training_loss=False, random_state=42,
    )
    model.fit(x, show_progress=False)
    return model


def als_recs(model, users):
    out = []
    for u in users:
        scores = model.item_factors @ model.user_factors[u["user"]]
        out.append(top(np.asarray(scores), u["given"]))
    return out


def mean_ndcg(recs, users):
    return float(np.mean([ndcg10(r, set(u["relevant"])) for r, u in zip(recs, users)]))


def main():
    d = sys.argv[1]
    meta = json.load(open(os.path.join(d, "meta.json")))
    n_users, n_items = meta["users"], meta["items"]
    inner = load_pairs(os.path.join(d, "inner_train.csv"), n_users, n_items)
    outer = load_pairs(os.path.join(d, "train.csv"), n_users, n_items)
    validation = load_users(os.path.join(d, "validation.jsonl"))
    test = load_users(os.path.join(d, "test.jsonl"))
    results = {}

    # EASE: tune λ on the validation split.
    best = None
    for l2 in meta["ease_grid"]:
        score = mean_ndcg(ease_recs(inner, ease_fit(inner, l2), validation), validation)
        if best is None or score > best[1]:
            best = (l2, score)
    start = time.perf_counter()
    b = ease_fit(outer, best[0])
    seconds = time.perf_counter() - start
    results["peer EASE (numpy)"] = {"recs": ease_recs(outer, b, test), "seconds": seconds, "tuned": f"l2={best[0]}"}

    # implicit ALS: tune regularisation and alpha at fixed factors/iterations.
    f, it = meta["als_factors"], meta["als_iterations"]
    best = None
    for reg in meta["als_reg_grid"]:
        for alpha in meta["als_alpha_grid"]:
            score = mean_ndcg(als_recs(als_fit(inner, f, reg, alpha, it), validation), validation)
            if best is None or score > best[2]:
                best = (reg, alpha, score)
    start = time.perf_counter()
    model = als_fit(outer, f, best[0], best[1], it)
    seconds = time.perf_counter() - start
    results["peer implicit ALS"] = {
        "recs": als_recs(model, test), "seconds": seconds,
        "tuned": f"factors={f} reg={best[0]} alpha={best[1]} iterations={it}",
    }

    # Speed at the fixed setting recflow's iALS is timed with (median of 7).
    times = []
    for _ in range(7):
        start = time.perf_counter()
        als_fit(outer, f, meta["speed_reg"], meta["speed_alpha"], it)
        times.append(time.perf_counter() - start)
    results["_speed"] = {"implicit_als_seconds": sorted(times)[len(times) // 2]}
    results["_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(results, open(os.path.join(d, "peers.json"), "w"))


if __name__ == "__main__":
    main()
