"""GraphQL API (strawberry) mounted at ``/graphql`` of the BentoML service.

:mod:`~serving.graphql.schema` holds the types and resolvers (thin: every resolver calls the same
:class:`serving.gateway.Gateway` operation as the REST route), :mod:`~serving.graphql.limits` the
query cost rule, :mod:`~serving.graphql.app` the ASGI app (auth, rate limit, persisted queries).
"""
