import polars as pl

from pipelines.defs.catalog.assets import canonical_provider_names


def test_one_name_per_provider_prefers_justwatch():
    df = pl.DataFrame(
        {
            "provider_id": ["appletvplus", "appletvplus", "netflix", "tmdb:99"],
            "provider_name": ["Apple TV Plus", "Apple TV+", "Netflix", "Obscure"],
            "source": ["tmdb", "justwatch", "tmdb", "tmdb"],
        }
    )
    out = canonical_provider_names(df)
    assert out["provider_name"].to_list() == ["Apple TV+", "Apple TV+", "Netflix", "Obscure"]
    assert out.columns == df.columns
