"""Social features: follows, friends (consent both ways), blocks, privacy, group consent.

:mod:`serving.social.store` holds the graph (SQLite) and its rules, :mod:`serving.social.views`
the reads (activity, feed), :mod:`serving.social.routes` the HTTP routes.
"""
