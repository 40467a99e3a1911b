"""Watch-event assets: import histories (manifest, configured files, inbox) and API feedback.

Each run is one daily partition: what it imports is written as batch files tagged with that day;
events are de-duplicated by ``event_id`` across the whole table, so reruns add nothing.
Erasure requests recorded by the API are applied here: the users' rows are physically deleted.

Inbox items go through :func:`pipelines.lib.inbox.import_item`: one the importer refuses (hostile,
wrong format, header only, nothing usable) moves to ``.rejected/<day>/`` with its reason and the
run goes on; the metadata lists rejected items with the importer's reason, which names the file,
line and what is wrong, never a row's content. Rejected items wrote nothing, so they are not in
the ``batch_*`` counts. Manifest and configured imports are the operator's files: a refused one
fails the run. ``batch_resolution_rate`` is resolved / (resolved + unresolved + quarantined), as
in the CLI summary: a malformed row counts as a miss.
"""

import dagster as dg

from core.crash import crash_point
from core.feedback import read_erasures, read_feedback
from core.lake import read_table, write_partition
from pipelines.defs.catalog.assets import titles
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.erasure import drop_erased, erase_users
from pipelines.lib.histories.importer import import_files
from pipelines.lib.inbox import batch_id, import_item, read_manifest, scan_inbox
from pipelines.lib.late_resolution import resolve_waiting
from pipelines.partitions import daily_imports

GROUP = "events"


def _import_feedback(lake, feedback_dir, day: str, erased) -> int:
    """Append feedback events not yet in the lake; returns how many were added."""
    fb = drop_erased(read_feedback(feedback_dir), erased)
    if fb.height == 0:
        return 0
    existing = read_table(lake, "watch_events").select("event_id")
    new = fb.join(existing, on="event_id", how="anti").unique("event_id", keep="first")
    if new.height:
        write_partition(
            lake,
            "watch_events",
            f"batch={day}-feedback-{new.height}-{new['event_id'].min()[:8]}",
            new,
        )
    return new.height


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "watch_events",
            deps=[titles],
            group_name=GROUP,
            kinds={"parquet"},
            description="Every resolved view/rating of every user, one schema.",
        ),
        dg.AssetSpec(
            "unresolved_events",
            deps=[titles],
            group_name=GROUP,
            kinds={"parquet"},
            description="History rows that matched no catalogue title, with the reason.",
        ),
    ],
    partitions_def=daily_imports,
    can_subset=False,
)
def watch_events(context: dg.AssetExecutionContext, app: MediaGatewayConfig):
    settings = app.settings()
    lake = settings.paths.lake
    day = context.partition_key
    catalogue = read_table(lake, "titles")

    planned: list[tuple[str, str, list, object]] = []  # (format, user, paths, inbox item | None)
    if settings.sources.history_manifest:
        for fmt, user, path in read_manifest(settings.sources.history_manifest):
            planned.append((fmt, user, [path], None))
    for spec in settings.sources.history_imports:
        planned.append((spec.format, spec.user, [spec.path], None))
    for item in scan_inbox(settings.paths.inbox):
        planned.append((item.format, item.user, [item.path], item))

    totals = {
        "read": 0,
        "resolved": 0,
        "unresolved": 0,
        "quarantined": 0,
        "dropped": 0,
        "duplicates_skipped": 0,
    }
    rejected: list[dict[str, str]] = []
    for fmt, user, paths, item in planned:
        if item is None:
            key = f"{fmt}:{user}:" + ",".join(str(p) for p in paths)
            summary = import_files(
                fmt=fmt,
                user_id=user,
                paths=paths,
                lake=lake,
                titles=catalogue,
                batch_id=batch_id(day, key),
            )
        else:
            result = import_item(item, settings.paths.inbox, lake, catalogue, day)
            if result.summary is None:
                moved = result.moved_to.relative_to(settings.paths.inbox)
                rejected.append(
                    {"format": fmt, "user": user, "item": str(moved), "reason": str(result.reason)}
                )
                context.log.warning(f"inbox: rejected {moved}: {result.reason}")
                continue
            summary = result.summary
        meta = summary.as_metadata()
        for name in totals:
            totals[name] += int(meta.get(name, 0))
        context.log.info(
            f"imported {fmt}: read={meta.get('read')} "
            f"resolved={meta.get('resolved')} unresolved={meta.get('unresolved')} "
            f"quarantined={meta.get('quarantined')}"
        )
        crash_point("import")

    # rows waiting from earlier imports: the catalogue may know them now (late TMDB titles)
    late = resolve_waiting(lake, catalogue, batch_id(day, "late-resolution"))
    context.log.info(
        f"late resolution: {late['resolved']} of {late['waiting']} waiting rows resolved"
    )

    erased = read_erasures(settings.paths.feedback)
    feedback_added = _import_feedback(lake, settings.paths.feedback, day, erased)
    erased_rows = erase_users(lake, erased)

    events = read_table(lake, "watch_events")
    unresolved = read_table(lake, "unresolved_events")
    # quarantined rows are misses, as in the CLI summary (ImportSummary.resolution_rate)
    attempted = totals["resolved"] + totals["unresolved"] + totals["quarantined"]
    rate = totals["resolved"] / attempted if attempted else 0.0
    yield dg.MaterializeResult(
        asset_key="watch_events",
        metadata={
            "imports": len(planned),
            **{f"batch_{k}": v for k, v in totals.items()},
            "batch_resolution_rate": rate,
            "inbox_rejected": len(rejected),
            "inbox_rejections": dg.MetadataValue.json(rejected),
            "late_resolved": late["resolved"],
            "feedback_added": feedback_added,
            "erased_users": len(erased),
            "erased_rows": erased_rows,
            "rows": events.height,
            "users": events["user_id"].n_unique(),
            "titles": events["title_id"].n_unique(),
        },
    )
    yield dg.MaterializeResult(
        asset_key="unresolved_events",
        metadata={
            "rows": unresolved.height,
            "by_reason": dg.MetadataValue.json(
                dict(unresolved.group_by("reason").len().sort("reason").iter_rows())
            ),
        },
    )
