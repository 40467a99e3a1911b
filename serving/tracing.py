"""Tracing: spans of unsampled requests are not recorded.

BentoML 1.4 samples traces with its ``ParentBasedTraceIdRatio``, whose answer for a trace it does
not sample is ``RECORD_ONLY``: every request, sampled or not, builds recording spans (the server
span with its HTTP attributes, and one child span per ASGI message sent or received). With the
default ``tracing.sample_rate`` of 0 no span is ever exported, yet they cost CPU. With the sampler
below, ``benchmarks/server_cpu.py --baseline 7e8f38d`` (one worker, 8 interleaved rounds) measured
server CPU per request of 0.74x for ``/livez`` (0.78 against 1.07 ms), 0.92x for a cached
``/recommend`` and 0.92x for a cold one (12.4 against 13.4 ms).

:func:`drop_unsampled_spans` replaces that sampler class, before BentoML builds its tracer provider,
with :class:`TraceIdRatioDroppingUnsampled`: the same ratio and the same respect for a parent's
decision, but ``DROP`` instead of ``RECORD_ONLY``. What stays: sampled traces are recorded and
exported exactly as before, and an unsampled request still has its trace and span ids (a
non-recording span carries its span context), so the access log's ``trace=`` and ``span=`` fields
are unchanged. What goes: BentoML's ``request_id`` (a scope key its server hook takes from a
recording span) is ``None`` for unsampled requests; nothing in this service reads it.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


class TraceIdRatioDroppingUnsampled(ParentBased):
    """BentoML's sampler (``ParentBasedTraceIdRatio(rate)``) with ``DROP`` for unsampled traces."""

    def __init__(self, rate: float) -> None:
        super().__init__(root=TraceIdRatioBased(rate))


def drop_unsampled_spans() -> None:
    """Make BentoML's tracer provider use :class:`TraceIdRatioDroppingUnsampled`.

    Call before the service's ASGI app is built (``serving.service`` does it at import): the
    provider is created, once per worker, when BentoML assembles the app's middleware.
    """
    from bentoml._internal.utils import telemetry

    telemetry.ParentBasedTraceIdRatio = TraceIdRatioDroppingUnsampled  # type: ignore[misc]
