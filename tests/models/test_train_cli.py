"""`media-gateway train` / `recommend-batch` through the real CLI on tiny files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from core.schemas import EMBEDDING_DIM
from media_gateway.cli import app
from models.train import TrainingInputError, load_item_features, read_interactions, train_model

runner = CliRunner()

# Two taste groups; ids are strings that must survive untouched ("007" keeps its zeros).
USERS = {"007": "L", "u1": "L", "u2": "L", "u3": "R", "u4": "R", "042": "R"}
ITEMS = {"L": ["m1", "m2", "m3", "m4"], "R": ["m5", "m6", "m7", "m8"]}


def _write_csv(path: Path) -> pl.DataFrame:
    rows = []
    for n, (user, group) in enumerate(USERS.items()):
        for m, item in enumerate(ITEMS[group]):
            if m != n % 4:  # every user misses one item of their group
                rows.append((user, item, float(1 + (n + m) % 5), 1_600_000_000 + 60 * m))
    df = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"], orient="row")
    df.write_csv(path)
    return df


def _flat(text: str) -> str:
    """Console output without whitespace (rich wraps long lines at spaces or mid-word)."""
    return "".join(text.split())


def test_train_then_recommend_batch(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "ratings.csv")
    model_dir = tmp_path / "models" / "als"
    result = runner.invoke(
        app,
        ["train", "--interactions", str(tmp_path / "ratings.csv"), "--model", "als",
         "--out", str(model_dir), "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((model_dir / "report.json").read_text())
    assert (report["model"], report["users"], report["items"], report["seed"]) == ("als", 6, 8, 3)
    assert report["pairs"] == data.height and report["params"]["seed"] == 3
    assert report["seconds"]["fit"] >= 0 and (model_dir / "model.json").is_file()

    out = tmp_path / "recs" / "top.parquet"
    result = runner.invoke(
        app, ["recommend-batch", "--model-dir", str(model_dir), "--k", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    recs = pl.read_parquet(out)
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    assert set(recs["user_id"]) == set(USERS)  # original strings, e.g. "007"
    assert recs.group_by("user_id").len()["len"].max() == 3
    assert recs.join(data, on=["user_id", "item_id"], how="semi").height == 0
    assert _flat(f"wrote {recs.height} rows") in _flat(result.output)
    assert not list(out.parent.glob(".*tmp"))  # no temporary left behind


def test_rerun_replaces_model_and_parquet_input(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "ratings.csv")
    data.write_parquet(tmp_path / "ratings.parquet")
    out = tmp_path / "model"
    first = train_model(tmp_path / "ratings.parquet", "ease", out, seed=1)
    second = train_model(tmp_path / "ratings.parquet", "ease", out, seed=1)
    assert first["pairs"] == second["pairs"] == data.height
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert json.loads((out / "report.json").read_text())["created_at"] == second["created_at"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "user_id,item_id,rating\nu1,m1,4\nu1,m2,great\n",
            ":3: rating 'great' is not a finite number",
        ),
        ("user_id,item_id,rating\nu1,m1,4\nu2,,3\n", ":3: empty item_id"),
        ("user_id,rating\nu1,4\n", ":1: missing required column(s) ['item_id']"),
        ("user_id,item_id\nu1,m1\nu1,m2,5\n", ":3: expected 2 fields"),
        ("", ": file is empty"),
    ],
)
def test_bad_csv_exits_2_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    result = runner.invoke(
        app, ["train", "--interactions", str(bad), "--model", "als", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert _flat(f"{bad}{message}") in _flat(result.output)
    assert not (tmp_path / "m").exists()


def test_arguments_are_checked(tmp_path: Path) -> None:
    _write_csv(tmp_path / "r.csv")
    with pytest.raises(TrainingInputError, match="federated-dp only"):
        train_model(tmp_path / "r.csv", "als", tmp_path / "m", epsilon=1.0)
    with pytest.raises(TrainingInputError, match="unknown model"):
        train_model(tmp_path / "r.csv", "svd", tmp_path / "m")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(TrainingInputError, match="refusing"):
        train_model(tmp_path / "r.csv", "als", tmp_path / "precious")


def test_interactions_keep_ids_and_ratings(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating,extra\n007, m1 ,4.5,x\n007,m1,3,y\n")
    df = read_interactions(path)
    assert df.to_dicts() == [
        {"user_id": "007", "item_id": "m1", "rating": 4.5},
        {"user_id": "007", "item_id": "m1", "rating": 3.0},
    ]


def test_item_features_from_vector_column(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pl.DataFrame({"title_id": ["m1", "m2"], "vector": [[1.0, 0.0], [0.0, 1.0]]}).write_parquet(path)
    features = load_item_features(path)
    assert features["item_id"].to_list() == ["m1", "m2"]
    assert features["vector"].dtype == pl.List(pl.Float32)
    pl.DataFrame({"item_id": ["m1", "m1"], "vector": [[1.0], [2.0]]}).write_parquet(path)
    with pytest.raises(TrainingInputError, match="row 2: duplicate item_id 'm1'"):
        load_item_features(path)


@pytest.mark.slow
def test_item_features_encoded_from_titles(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_text(
        "item_id,title,genres\nm1,Toy Story (1995),Animation|Comedy\nm2,Heat (1995),Crime|Thriller\n"
    )
    features = load_item_features(path)
    vectors = np.asarray(features["vector"].to_list())
    assert vectors.shape == (2, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_train_uses_the_catalogue_content_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --model federated-dp` finds the lake's public content vectors without `--items`."""
    _write_csv(tmp_path / "ratings.csv")
    lake = tmp_path / "lake"
    (lake / "content_embeddings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    items = [i for group in ITEMS.values() for i in group] + ["m9-unwatched"]
    vectors = rng.normal(size=(len(items), 8)).astype(np.float32)
    pl.DataFrame(
        {
            "title_id": items,
            "content_hash": ["h"] * len(items),
            "vector": pl.Series(vectors.tolist(), dtype=pl.List(pl.Float32)),
        }
    ).write_parquet(lake / "content_embeddings" / "part-0.parquet")
    overlay = tmp_path / "lake.yaml"
    overlay.write_text(f"paths:\n  lake: {lake}\n")
    monkeypatch.setenv("MEDIA_GATEWAY_CONFIG", str(overlay))

    model_dir = tmp_path / "fed"
    result = runner.invoke(
        app,
        ["train", "--interactions", str(tmp_path / "ratings.csv"), "--model", "federated-dp",
         "--epsilon", "1", "--out", str(model_dir)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((model_dir / "report.json").read_text())
    assert report["item_features_source"].startswith("catalogue:")
    assert report["item_features"] == len(items)
    assert report["params"]["content_dim"] > 0  # the content model was trained

    # Ids the catalogue does not know (raw MovieLens ids, say): no content, still trains.
    plain = train_model(tmp_path / "ratings.csv", "ease", tmp_path / "ease", lake=lake)
    assert plain["item_features_source"] == "none"
    other = tmp_path / "other.csv"
    pl.read_csv(tmp_path / "ratings.csv").with_columns(
        ("x" + pl.col("item_id")).alias("item_id")
    ).write_csv(other)
    report = train_model(other, "federated-dp", tmp_path / "fed2", lake=lake, epsilon=1.0)
    assert report["item_features_source"] == "none"
