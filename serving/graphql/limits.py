"""Query size limits: depth (strawberry's limiter), aliases, tokens and a cost rule.

The cost of an operation is the sum over its fields (fragments expanded) of the field's weight,
and a field with a ``limit`` argument multiplies the cost of what it selects by that limit (a
variable or a missing ``limit`` counts as the maximum or the default of that field). Personal
ranking fields are heavier than plain lookups. One HTTP request is charged once to the rate
limiter, so this is what bounds the work one request can ask for.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

MAX_DEPTH = 6
"""Deeper than any path of today's schema (a guard for recursive types added later);
introspection fields are not counted, so GraphiQL's introspection query works."""
MAX_ALIASES = 15
MAX_TOKENS = 2_000
MAX_COST = 2_000
"""E.g. ``recommendations(limit: 100)`` with a dozen fields each is within it; two such are not."""
FIELD_WEIGHTS = {
    "recommendations": 20,
    "groupRecommendations": 40,
    "search": 20,
    "explanation": 10,
}
DEFAULT_LIMIT = 20
"""Multiplier when a list field's ``limit`` is a variable or absent (fields default below it)."""
MAX_LIMIT = 100


def _limit(field: FieldNode) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value == "limit":
            if isinstance(arg.value, IntValueNode):
                return int(arg.value.value)
            return MAX_LIMIT
    return None


def selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, Any],
    seen: frozenset[str] = frozenset(),
    root: bool = True,
) -> int:
    """Cost of a selection set; :data:`FIELD_WEIGHTS` apply to root fields only."""
    if selection_set is None:
        return 0
    cost = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            limit = _limit(sel)
            inner = selection_cost(sel.selection_set, fragments, seen, root=False)
            weight = FIELD_WEIGHTS.get(sel.name.value, 1) if root else 1
            cost += weight + (limit or 1) * inner
        elif isinstance(sel, InlineFragmentNode):
            cost += selection_cost(sel.selection_set, fragments, seen, root)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # cycles are another rule's error
                cost += selection_cost(fragment.selection_set, fragments, seen | {name}, root)
    return cost


class QueryCostLimit(ValidationRule):
    """Reports an operation whose cost exceeds :data:`MAX_COST`."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            f.name.value: f
            for f in self.context.document.definitions
            if hasattr(f, "type_condition")
        }
        cost = selection_cost(node.selection_set, fragments)
        if cost > MAX_COST:
            self.report_error(
                GraphQLError(f"query cost {cost} exceeds the limit of {MAX_COST}", node)
            )


def limit_extensions() -> list[SchemaExtension]:
    """The schema extensions enforcing every limit above."""
    return [
        QueryDepthLimiter(max_depth=MAX_DEPTH),
        MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        MaxTokensLimiter(max_token_count=MAX_TOKENS),
        AddValidationRules([QueryCostLimit]),
    ]
