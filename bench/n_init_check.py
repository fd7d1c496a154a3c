"""Does a rerun of K-Means with other seeds find a better optimum than the engine's n_init?

    python bench/n_init_check.py

For each test-shaped data set and every K from 2 to 10, the engine's settings (n_init,
random_state 0) are compared with the best of 200 single-start fits with other seeds. Prints,
per n_init, the number of (data set, K) cases where some other seed found an inertia lower by
more than 1e-6 (relative), and the largest silhouette lost in such a case.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clustering.engine import log_transform, skewed_columns  # noqa: E402
from customers.demo_data import generate  # noqa: E402

RERUNS = 200


def wholesale_like(rows: int = 440, seed: int = 0) -> np.ndarray:
    """Six heavy-tailed spend columns, correlated, no clean groups (as the real file is)."""
    rng = np.random.default_rng(seed)
    retail = rng.random(rows) < 0.32
    base = rng.normal(0, 1, (rows, 1))
    means = np.where(
        retail[:, None], [8.0, 9.0, 9.4, 6.9, 8.4, 6.9], [9.2, 7.6, 7.8, 7.6, 5.6, 6.6]
    )
    X = np.exp(means + 0.5 * base + rng.normal(0, 1.0, (rows, 6)))
    return np.round(X)


def demo(rows: int = 5000) -> np.ndarray:
    data = generate(rows, 42)
    return np.column_stack(
        [data[k] for k in ("age", "annual_income", "spending_score", "purchase_frequency")]
    ).astype(float)


def mall(rows: int = 200, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([(25, 25, 80), (45, 26, 20), (40, 55, 50), (32, 87, 82), (42, 88, 17)])
    picks = rng.integers(0, len(centres), rows)
    return centres[picks] + rng.normal(0, [8, 9, 9], (rows, 3))


def scaled(X: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(log_transform(X, skewed_columns(X, [True] * X.shape[1])))


def main() -> None:
    sets = {"wholesale-like 440": scaled(wholesale_like()), "mall 200": scaled(mall()),
            "demo 5,000": scaled(demo())}  # fmt: skip
    candidates = (4, 10, 20, 30)
    misses = {n: [] for n in candidates}
    for name, Xs in sets.items():
        for k in range(2, 11):
            best = min(
                KMeans(k, n_init=1, random_state=seed).fit(Xs).inertia_
                for seed in range(1, RERUNS + 1)
            )
            for n in candidates:
                model = KMeans(k, n_init=n, random_state=0).fit(Xs)
                if model.inertia_ > best * (1 + 1e-6):
                    better = next(
                        KMeans(k, n_init=1, random_state=s).fit(Xs)
                        for s in range(1, RERUNS + 1)
                        if KMeans(k, n_init=1, random_state=s).fit(Xs).inertia_ <= best * (1 + 1e-6)
                    )
                    lost = silhouette_score(Xs, better.labels_) - silhouette_score(
                        Xs, model.labels_
                    )
                    misses[n].append((name, k, model.inertia_ / best - 1, lost))
        print(name, "done", flush=True)
    for n, cases in misses.items():
        worst = max((c[3] for c in cases), default=0.0)
        print(
            f"n_init={n}: {len(cases)} of 27 cases beaten by another seed; "
            f"worst silhouette lost {worst:+.3f}"
        )
        for case in cases:
            print(f"   {case[0]} K={case[1]}: inertia +{case[2]:.2%}, silhouette {case[3]:+.3f}")


if __name__ == "__main__":
    main()
