"""Where a title can be watched: a filter on country, services and kind of offer.

``AvailabilityFilter(country="US", services=["netflix"])`` keeps titles with a subscription or free
offer on Netflix in the US. An empty ``services`` list means any service in that country.
``include_unavailable=True`` keeps every title (the offers are still reported, possibly empty), for
"show me everything, tell me where it is".

The same filter becomes a LanceDB ``where`` clause for the ``content_index`` (columns ``services`` =
``COUNTRY:provider`` tokens of FLATRATE/FREE/ADS offers, ``rent_buy`` = tokens of RENT/BUY offers,
``countries``). The index cannot tell subscription from free, nor rent from buy, so the clause is a
superset of the exact filter; callers re-check with :meth:`AvailabilityFilter.mask`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.ranking.catalog import Catalog, Offer

Monetization = Literal["subscription", "free", "rent", "buy"]
DEFAULT_MONETIZATION: frozenset[str] = frozenset({"subscription", "free"})


def sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


class AvailabilityFilter(BaseModel):
    """Keep titles watchable in ``country`` on ``services`` (any if empty) via ``monetization``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(pattern=r"^[A-Z]{2}$")
    services: list[str] = Field(default_factory=list)
    """Provider ids (JustWatch technical names: netflix, amazonprime, disneyplus, hulu, ...)."""
    monetization: frozenset[Monetization] = DEFAULT_MONETIZATION
    include_unavailable: bool = False

    @field_validator("monetization")
    @classmethod
    def _non_empty(cls, value: frozenset[str]) -> frozenset[str]:
        if not value:
            raise ValueError("monetization must name at least one of subscription/free/rent/buy")
        return value

    def mask(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over the catalogue rows that pass the filter (precomputed offer rows, no
        frame scan: this runs on every request)."""
        if self.include_unavailable:
            return np.ones(len(catalog), dtype=bool)
        return catalog.offer_mask(self.country, self.monetization, self.services)

    def offers(self, catalog: Catalog, title_id: str) -> list[Offer]:
        """Offers of ``title_id`` that satisfy the filter (country, services, monetization)."""
        services = set(self.services)
        return [
            o
            for o in catalog.offers_for(title_id, self.country)
            if o.kind in self.monetization and (not services or o.provider_id in services)
        ]

    def where_clause(self, catalog: Catalog | None = None) -> str | None:
        """LanceDB SQL prefilter equivalent to (a superset of) this filter; ``None`` = no filter.

        With an empty ``services`` list the clause needs the providers present in the country: taken
        from ``catalog`` when given, else the looser ``array_has(countries, 'US')``.
        """
        if self.include_unavailable:
            return None
        clauses = []
        for column, kinds in (
            ("services", {"subscription", "free"}),
            ("rent_buy", {"rent", "buy"}),
        ):
            wanted = kinds & set(self.monetization)
            if not wanted:
                continue
            if self.services:
                providers = list(self.services)
            elif catalog is not None:
                providers = catalog.providers(self.country, wanted)
            else:
                return f"array_has(countries, {sql_string(self.country)})"
            if providers:
                tokens = [f"{self.country}:{p}" for p in providers]
                clauses.append(f"array_has_any({column}, {sql_list(tokens)})")
        if not clauses:
            return "false"
        return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"
