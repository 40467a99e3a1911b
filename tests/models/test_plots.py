"""Every evaluation figure draws its data, carries labels and saves as PNG."""

from __future__ import annotations

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


def _saved(fig: Figure, path: Path) -> None:
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title()
    assert fig.axes[-1].get_xlabel() and ax.get_ylabel()
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_metric_per_round(tmp_path: Path) -> None:
    history = [{"round": r, "ndcg": 0.1 * r, "epsilon": 0.2 * r} for r in (3, 1, 2)]
    fig = plot_metric_per_round(history)
    assert len(fig.axes) == 2  # one panel per metric
    xs = fig.axes[1].lines[0].get_xdata()  # panels sorted by name: epsilon, ndcg
    assert list(xs) == [1, 2, 3]
    assert list(fig.axes[1].lines[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    _saved(fig, tmp_path / "rounds.png")
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
    assert set(no_dp.get_ydata()) == {0.3}  # horizontal reference
    assert "no DP" in [t.get_text() for t in ax.get_legend().get_texts()][1]
    _saved(fig, tmp_path / "privacy.png")
    with pytest.raises(PlotInputError, match="> 0"):
        plot_privacy_utility([{"epsilon": 0.0, "ndcg": 0.1, "label": "x"}])


def test_metrics_by_activity(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"bucket": ["1-10", "11-20", ">20"], "users": [5, 3, 0], "ndcg": [0.2, 0.3, None]}
    )
    fig = plot_metrics_by_activity(frame)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:2] == pytest.approx([0.2, 0.3])
    _saved(fig, tmp_path / "activity.png")
    with pytest.raises(PlotInputError, match="missing"):
        plot_metrics_by_activity(frame.drop("ndcg"))


def test_popularity_bias(tmp_path: Path) -> None:
    train = pl.DataFrame(
        {"user_id": ["a", "b", "c", "a", "b", "a"], "item_id": ["x", "x", "x", "y", "y", "z"]}
    )
    recs = pl.DataFrame({"user_id": ["c", "c"], "item_id": ["y", "z"], "rank": [1, 2]})
    fig = plot_popularity_bias(recs, train, bins=4)
    assert len(fig.axes[0].patches) == 8  # two histograms of 4 bins
    _saved(fig, tmp_path / "popularity.png")
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
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == pytest.approx([0.23, 0.25, 0.42, 0.48])  # timings left out
    _saved(fig, tmp_path / "comparison.png")
    with pytest.raises(PlotInputError, match="model"):
        plot_model_comparison(table.drop("model"))
