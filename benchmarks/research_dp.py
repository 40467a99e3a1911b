"""One-off research experiments behind the "what was tried and lost" table of the README (issue 8).

Numpy simulations on the training part of the Microsoft split (validation carved from training the
same way, then test), not the shipped models. Noise is Gaussian, calibrated by the analytic
Gaussian mechanism (Balle & Wang, "Improving the Gaussian Mechanism for Differential Privacy",
ICML 2018, Theorem 8: δ(ε) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ) for μ = Δ/σ), or by Opacus.

    .venv/bin/python benchmarks/research_dp.py gram            # DP item-item Gram -> EASE
    .venv/bin/python benchmarks/research_dp.py snr             # its noise scale, analytically
    .venv/bin/python benchmarks/research_dp.py taste           # DP taste vectors in content space
    .venv/bin/python benchmarks/research_dp.py tune            # EASE / EDLAE / RP3beta / ensemble
    .venv/bin/python benchmarks/research_dp.py prior --dataset ml-latest-small
    .venv/bin/python benchmarks/research_dp.py amplification   # Poisson subsampling, Opacus

``taste`` needs ``--features``: the cached MiniLM vectors of ``quality.py``
(``var/benchmarks/features_<dataset>.parquet``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl
from _datasets import DEFAULT_DATA_DIR, load_dataset
from scipy.optimize import brentq
from scipy.stats import norm

from models.evaluation.splits import stratified_split
from models.train import to_weights

GAINS = 1 / np.log2(np.arange(2, 12))


def agm_sigma(epsilon: float, delta: float) -> float:
    """Smallest σ (sensitivity 1) of one Gaussian release that is (ε, δ)-DP (Balle & Wang)."""

    def gap(mu: float) -> float:
        return norm.cdf(mu / 2 - epsilon / mu) - math.exp(epsilon) * norm.cdf(
            -mu / 2 - epsilon / mu
        )

    return 1 / brentq(lambda mu: gap(mu) - delta, 1e-3, 50)


def matrices(train: pl.DataFrame, test: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    users, items = sorted(set(train["user_id"])), sorted(set(train["item_id"]))
    row = {u: i for i, u in enumerate(users)}
    col = {x: i for i, x in enumerate(items)}
    x = np.zeros((len(users), len(items)))
    x[[row[u] for u in train["user_id"]], [col[i] for i in train["item_id"]]] = 1
    t = np.zeros_like(x)
    known = test.filter(pl.col("user_id").is_in(users) & pl.col("item_id").is_in(items))
    t[[row[u] for u in known["user_id"]], [col[i] for i in known["item_id"]]] = 1
    return x, t, items


def ndcg(scores: np.ndarray, x: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Binary nDCG@k over users with truth, training items excluded (as models.evaluation)."""
    s = np.where(x > 0, -np.inf, scores)
    top = np.argpartition(-s, k, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1)
    hits = np.take_along_axis(truth, top, 1)
    n_true = truth.sum(1)
    has = n_true > 0
    ideal = np.cumsum(GAINS)[np.minimum(n_true, k).astype(int) - 1]
    return float(((hits @ GAINS)[has] / ideal[has]).mean())


def ease(gram: np.ndarray, lam: float) -> np.ndarray:
    p = np.linalg.inv(gram + lam * np.eye(len(gram)))
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0)
    return b


def edlae(gram: np.ndarray, lam: float, dropout: float) -> np.ndarray:
    return ease(gram + np.diag(dropout / (1 - dropout) * np.diag(gram)), lam)


def rp3beta(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    deg_i = np.maximum(x.sum(0), 1)
    w = ((x / deg_i).T ** alpha) @ ((x / np.maximum(x.sum(1, keepdims=True), 1)) ** alpha)
    w = w / deg_i[None, :] ** beta
    np.fill_diagonal(w, 0)
    return w


def zscore(s: np.ndarray) -> np.ndarray:
    return (s - s.mean(1, keepdims=True)) / np.maximum(s.std(1, keepdims=True), 1e-12)


def splits(dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    ratings = load_dataset(dataset, DEFAULT_DATA_DIR)
    train, test = stratified_split(ratings, 0.75, 42, "item")
    train = to_weights(train)
    fit, val = stratified_split(train, 0.75, 42, "item")
    return {"val": matrices(fit, val), "test": matrices(train, test)}


def gram(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    sigma = agm_sigma(args.epsilon, 1e-5)
    for name, (x, t, _) in splits(args.dataset).items():
        xn = x / np.sqrt(x.sum(1, keepdims=True))  # each user's x xᵀ/‖x‖²: Frobenius norm 1
        g, pop = xn.T @ xn, x.sum(0)
        print(name, "popularity", round(ndcg(np.tile(pop, (len(x), 1)), x, t), 4))
        for clients in (1, 3):
            noise = sigma * math.sqrt(clients)  # per-client noise adds up without secure sum
            for n in (100, 200, 400, 800, x.shape[1]):
                top = np.argsort(-pop)[:n]
                z = np.triu(rng.normal(0, noise, (n, n)))
                noisy = g[np.ix_(top, top)] + z + np.triu(z, 1).T
                for lam in (20, 100, 400):
                    s = np.tile(pop * 1e-6, (len(x), 1))
                    s[:, top] += x[:, top] @ ease(noisy, lam)
                    print(name, f"clients={clients} N={n} λ={lam}", round(ndcg(s, x, t), 4))


def snr(args: argparse.Namespace) -> None:
    x, _, _ = splits(args.dataset)["test"]
    xn = x / np.sqrt(x.sum(1, keepdims=True))
    g = xn.T @ xn
    off = g[np.triu_indices_from(g, 1)]
    sigma = agm_sigma(args.epsilon, 1e-5)
    print(f"users {x.shape[0]} items {x.shape[1]} σ {sigma:.3f}")
    print(f"off-diagonal p99 {np.percentile(off, 99):.3f}, share > σ {(off > sigma).mean():.2e}")
    eig = np.linalg.eigvalsh(g)[::-1][:5]
    print(
        f"top eigenvalues {eig.round(1)}; noise spectral norm ≈ {2 * sigma * math.sqrt(len(g)):.0f}"
    )


def taste(args: argparse.Namespace) -> None:
    from models.federated.content import public_item_vectors

    features = pl.read_parquet(args.features)
    rng = np.random.default_rng(1)
    for name, (x, t, items) in splits(args.dataset).items():
        xn = x / np.sqrt(x.sum(1, keepdims=True))
        for d in (16, 32):
            v = public_item_vectors(features, items, d).astype(np.float64)
            p = x @ v
            p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
            for clients in (1, 3):
                noise = math.sqrt(2 * clients) * agm_sigma(args.epsilon, 1e-5)  # 2 releases
                count = xn.sum(0) + rng.normal(0, noise, x.shape[1])
                vectors = xn.T @ p + rng.normal(0, noise, (x.shape[1], d))
                for a, b, g in ((0, 0.3, 10), (0, 0.3, 30), (1, 1, 30)):
                    s = a * (p @ vectors.T) + b * count[None, :] + g * (p @ v.T)
                    print(
                        name, f"d={d} clients={clients} a={a} b={b} g={g}", round(ndcg(s, x, t), 4)
                    )


def tune(args: argparse.Namespace) -> None:
    for name, (x, t, _) in splits(args.dataset).items():
        g = x.T @ x
        for lam in (100, 200, 300, 500, 800):
            print(name, "ease", lam, round(ndcg(x @ ease(g, lam), x, t), 4))
        for lam in (50, 200):
            for p in (0.1, 0.25, 0.4):
                print(name, "edlae", lam, p, round(ndcg(x @ edlae(g, lam, p), x, t), 4))
        for alpha in (0.8, 1.0):
            for beta in (0.2, 0.35, 0.5):
                print(
                    name, "rp3beta", alpha, beta, round(ndcg(x @ rp3beta(x, alpha, beta), x, t), 4)
                )
        e, r = zscore(x @ ease(g, 500)), zscore(x @ rp3beta(x, 0.8, 0.5))
        for w in (0.0, 0.2, 0.35, 0.5, 0.75):
            print(name, "ease + w rp3beta", w, round(ndcg(e + w * r, x, t), 4))


def prior(args: argparse.Namespace) -> None:
    data = Path(DEFAULT_DATA_DIR)
    links = pl.read_csv(data / "movielens" / "ml-latest-small" / "links.csv")
    tmdb = pl.read_csv(data / "tmdb" / "tmdb_5000_movies.csv", infer_schema=False).select(
        pl.col("id").cast(pl.Int64).alias("tmdbId"), pl.col("vote_count").cast(pl.Float64)
    )
    votes = dict(
        links.join(tmdb, on="tmdbId")
        .select(pl.col("movieId").cast(pl.String), "vote_count")
        .iter_rows()
    )
    noise = agm_sigma(args.epsilon, 1e-5) * math.sqrt(3)  # per-client noise, 3 clients
    for name, (x, t, items) in splits(args.dataset).items():
        public = np.array([votes.get(i, -1.0) for i in items])
        count = (x / np.sqrt(x.sum(1, keepdims=True))).sum(0)
        print(name, "exact popularity", round(ndcg(np.tile(x.sum(0), (len(x), 1)), x, t), 4))
        for draw in range(3):
            rng = np.random.default_rng(draw)
            first = count + rng.normal(0, noise * math.sqrt(2), count.shape)  # half the budget
            top = np.argsort(-first)[:300]
            two_phase = first - 1e6
            two_phase[top] = count[top] + rng.normal(0, noise * math.sqrt(2), 300)
            by_prior = public * 1e-9 - 1e6
            top = np.argsort(-public)[:300]
            by_prior[top] = count[top] + rng.normal(0, noise, 300)
            print(
                name,
                draw,
                "two-phase",
                round(ndcg(np.tile(two_phase, (len(x), 1)), x, t), 4),
                "prior top-300",
                round(ndcg(np.tile(by_prior, (len(x), 1)), x, t), 4),
            )


def amplification(args: argparse.Namespace) -> None:
    from models.privacy.accounting import calibrate_noise

    one = calibrate_noise(args.epsilon, 1e-5, 1.0, 1, accountant="rdp")
    for q in (1.0, 0.5, 0.25, 0.1):
        steps = round(1 / q)
        sigma = calibrate_noise(args.epsilon, 1e-5, q, steps, accountant="rdp")
        print(
            f"q={q} steps={steps} σ={sigma:.3f} relative noise {sigma * math.sqrt(steps) / one:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "experiment", choices=("gram", "snr", "taste", "tune", "prior", "amplification")
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument(
        "--features", type=Path, default=Path("var/benchmarks/features_ml-100k.parquet")
    )
    args = parser.parse_args(argv)
    globals()[args.experiment](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
