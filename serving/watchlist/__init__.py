"""Watchlists, availability alerts and "continue watching" (cross-device: all server-side).

:mod:`~serving.watchlist.store` keeps watchlists and alerts in SQLite, :mod:`~serving.watchlist.progress`
derives series progress from the imported histories, :mod:`~serving.watchlist.routes` serves them.
"""
