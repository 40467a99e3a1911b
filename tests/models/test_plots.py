"""Every evaluation figure draws exactly its input data, carries its labels and saves as PNG; the
nightly run logs figures of its own numbers."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from matplotlib.figure import Figure

from models.evaluation.plots import (
    PlotInputError,
    plot_metric_per_round,
    plot_metrics_by_activity,
    plot_model_comparison,
    plot_popularity_bias,
    plot_privacy_utility,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _saved(fig: Figure, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert (ax.get_title(), fig.axes[-1].get_xlabel(), ax.get_ylabel()) == (title, xlabel, ylabel)
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def _bars(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def test_metric_per_round(tmp_path: Path) -> None:
    history = [{"round": r, "ndcg": 0.1 * r, "epsilon": 0.2 * r} for r in (3, 1, 2)]
    fig = plot_metric_per_round(history)
    assert [ax.get_ylabel() for ax in fig.axes] == ["epsilon", "ndcg"]  # one panel per metric
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    for ax, per_round in zip(fig.axes, (0.2, 0.1), strict=True):
        assert list(ax.lines[0].get_xdata()) == [1, 2, 3]  # sorted by round
        assert list(ax.lines[0].get_ydata()) == pytest.approx([per_round * r for r in (1, 2, 3)])
    _saved(fig, tmp_path / "rounds.png", "Metrics per federated round", "round", "epsilon")
    only = plot_metric_per_round(history, metrics=["ndcg"])
    assert [ax.get_ylabel() for ax in only.axes] == ["ndcg"]
    with pytest.raises(PlotInputError):
        plot_metric_per_round([])


def test_privacy_utility_log_axis_and_no_dp_line(tmp_path: Path) -> None:
    points = [
        {"epsilon": e, "ndcg": 0.1 + 0.02 * n, "label": "federated-dp"}
        for n, e in enumerate([0.5, 1, 2, 4, 8])
    ] + [{"epsilon": None, "ndcg": 0.3, "label": "federated (no DP)"}]
    fig = plot_privacy_utility(points)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    dp_line, no_dp = ax.lines
    assert list(dp_line.get_xdata()) == [0.5, 1, 2, 4, 8]
    assert list(dp_line.get_ydata()) == pytest.approx([0.1, 0.12, 0.14, 0.16, 0.18])
    assert set(no_dp.get_ydata()) == {0.3} and no_dp.get_linestyle() == "--"  # reference
    assert _legend(ax) == ["federated-dp", "federated (no DP)"]
    _saved(
        fig,
        tmp_path / "privacy.png",
        "Privacy / utility trade-off",
        "privacy budget ε (log scale; smaller = more private)",
        "ndcg@10",
    )
    with pytest.raises(PlotInputError, match="> 0"):
        plot_privacy_utility([{"epsilon": 0.0, "ndcg": 0.1, "label": "x"}])


def test_metrics_by_activity(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"bucket": ["1-10", "11-20", ">20"], "users": [5, 3, 0], "ndcg": [0.2, 0.3, None]}
    )
    fig = plot_metrics_by_activity(frame)
    ax = fig.axes[0]
    heights = _bars(ax)
    assert len(heights) == 3 and heights[:2] == pytest.approx([0.2, 0.3])
    assert math.isnan(heights[2])  # an empty bucket is a gap, not a zero
    assert _ticks(ax) == ["1-10\n(5 users)", "11-20\n(3 users)", ">20\n(0 users)"]
    assert ax.get_legend() is None  # one series: no legend
    _saved(
        fig,
        tmp_path / "activity.png",
        "Quality by user activity",
        "training interactions per user",
        "nDCG@10",
    )
    grouped = plot_metrics_by_activity(
        pl.concat(
            [
                frame.with_columns(model=pl.lit("challenger")),
                frame.with_columns(model=pl.lit("champion v1"), ndcg=pl.Series([0.1, 0.4, None])),
            ]
        )
    )
    ax = grouped.axes[0]
    assert _legend(ax) == ["challenger", "champion v1"]
    assert _bars(ax)[:2] + _bars(ax)[3:5] == pytest.approx([0.2, 0.3, 0.1, 0.4])
    with pytest.raises(PlotInputError, match="missing"):
        plot_metrics_by_activity(frame.drop("ndcg"))


def test_popularity_bias(tmp_path: Path) -> None:
    train = pl.DataFrame(
        {"user_id": ["a", "b", "c", "a", "b", "a"], "item_id": ["x", "x", "x", "y", "y", "z"]}
    )
    recs = pl.DataFrame({"user_id": ["c", "c"], "item_id": ["y", "z"], "rank": [1, 2]})
    fig = plot_popularity_bias(recs, train, bins=4)
    ax = fig.axes[0]
    # percentiles by distinct users: x 3/3, y 2/3, z 1/3; bins of width 0.25, densities
    catalogue, recommended = _bars(ax)[:4], _bars(ax)[4:]
    assert catalogue == pytest.approx([0, 4 / 3, 4 / 3, 4 / 3])
    assert recommended == pytest.approx([0, 2, 2, 0])  # y and z
    (mean_line,) = ax.lines
    assert list(mean_line.get_xdata()) == pytest.approx([0.5, 0.5])  # mean of 1/3 and 2/3
    assert _legend(ax) == ["catalogue", "recommended", "mean recommended"]
    _saved(
        fig,
        tmp_path / "popularity.png",
        "Popularity of recommended items vs catalogue",
        "item popularity percentile in training (1 = most popular)",
        "density",
    )
    with pytest.raises(PlotInputError):
        plot_popularity_bias(recs.clear(), train)


def test_model_comparison(tmp_path: Path) -> None:
    table = pl.DataFrame(
        {
            "model": ["popularity", "ease"],
            "ndcg@10": [0.25, 0.48],
            "p@10": [0.23, 0.42],
            "train_seconds": [0.1, 2.0],
        }
    )
    fig = plot_model_comparison(table)
    ax = fig.axes[0]
    assert _bars(ax) == pytest.approx([0.25, 0.23, 0.48, 0.42])  # per model; timings left out
    assert _ticks(ax) == ["ndcg@10", "p@10"] and _legend(ax) == ["popularity", "ease"]
    _saved(fig, tmp_path / "comparison.png", "Model comparison", "metric", "value")
    with pytest.raises(PlotInputError, match="model"):
        plot_model_comparison(table.drop("model"))


def test_nightly_logs_figures_of_its_own_numbers(monkeypatch) -> None:
    """The nightly's plots show the challenger's and champion's metrics, privacy and history."""
    import mlops.run_logging as run_logging
    from mlops.champion import ChampionHandle
    from mlops.evaluation import CycleEvaluation
    from models.collaborative.popularity import PopularityRecommender
    from models.evaluation.evaluate import metrics_by_activity, recommend_for_test

    logged: dict[str, Figure] = {}
    monkeypatch.setattr(
        run_logging.mlflow, "log_figure", lambda fig, name: logged.update({name: fig})
    )
    users = [f"u{n}" for n in range(6)]
    train = pl.DataFrame(
        {
            "user_id": [u for u in users for _ in range(3)],
            "item_id": [f"i{(n + j) % 8}" for n in range(6) for j in range(3)],
            "weight": [1.0] * 18,
        }
    )
    test = pl.DataFrame({"user_id": users, "item_id": [f"i{(n + 4) % 8}" for n in range(6)]})
    model = PopularityRecommender().fit(train)
    metrics = {"ndcg@10": 0.4, "precision@10": 0.1, "coverage": 0.5}
    champion_metrics = {"ndcg@10": 0.3, "precision@10": 0.08, "coverage": 0.25}
    champion = ChampionHandle(model, "3", "run", Path("."), {"epsilon": 2.0}, champion_metrics)
    history = [{"round": r, "ndcg": 0.1 * r} for r in (1, 2)]
    by_activity = pl.concat(
        [
            metrics_by_activity(model, train, test, k=10).with_columns(model=pl.lit(name))
            for name in ("challenger", "champion v3")
        ]
    )
    evaluation = CycleEvaluation(
        train=train,
        test=test,
        split="stratified-user-0.75",
        metrics=metrics,
        fallback=None,
        fallback_metrics=None,
        champion_view=None,
        champion_metrics=champion_metrics,
        by_activity=by_activity,
        test_recommendations=recommend_for_test(model, train, test, 10),
    )
    run_logging.log_plots(evaluation, history, {"epsilon": 1.0}, champion)
    assert set(logged) == {
        f"plots/{name}.png"
        for name in (
            "model_comparison",
            "metrics_by_activity",
            "popularity_bias",
            "privacy_utility",
            "metric_per_round",
        )
    }
    ax = logged["plots/model_comparison.png"].axes[0]
    assert _ticks(ax) == ["ndcg@10", "precision@10", "coverage"]
    assert _legend(ax) == ["challenger", "champion v3"]
    assert _bars(ax) == pytest.approx([*metrics.values(), *champion_metrics.values()])
    ax = logged["plots/privacy_utility.png"].axes[0]
    assert sorted(_legend(ax)) == ["challenger", "champion v3"]
    assert {(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines} == {
        (1.0, 0.4),
        (2.0, 0.3),
    }
    ax = logged["plots/metrics_by_activity.png"].axes[0]
    assert _legend(ax) == ["challenger", "champion v3"]
    assert len(ax.patches) == 2 * len(ax.get_xticks())
    (line,) = logged["plots/metric_per_round.png"].axes[0].lines
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == pytest.approx([0.1, 0.2])
    ax = logged["plots/popularity_bias.png"].axes[0]
    half = len(ax.patches) // 2  # catalogue then recommended: both are densities
    for bars in (ax.patches[:half], ax.patches[half:]):
        assert sum(p.get_height() * p.get_width() for p in bars) == pytest.approx(1.0)
