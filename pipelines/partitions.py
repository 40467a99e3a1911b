"""Partitions: watch events are imported in daily batches (the UTC day of the import run).

Event *times* span decades (MovieLens starts in 1996), so partitioning by event time would create
thousands of tiny partitions; instead each daily run writes its own batch files
(``<lake>/watch_events/batch=<day>-<file hash>.parquet``), and ``event_date`` stays a column.
"""

import dagster as dg

daily_imports = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC", end_offset=1)
"""``end_offset=1``: today's partition exists, so a run at 02:30 imports into the current day."""
