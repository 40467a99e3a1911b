"""Unsampled requests get non-recording spans that still carry trace ids (serving/tracing.py)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from serving.tracing import TraceIdRatioDroppingUnsampled


def test_unsampled_spans_are_not_recorded_but_keep_their_ids() -> None:
    tracer = TracerProvider(sampler=TraceIdRatioDroppingUnsampled(0.0)).get_tracer("test")
    with tracer.start_as_current_span("request") as root:
        child = tracer.start_span("http send")
    for span in (root, child):
        assert not span.is_recording()
        assert span.get_span_context().is_valid, "trace and span ids for the access log"
    assert child.get_span_context().trace_id == root.get_span_context().trace_id


def test_sampled_traces_are_recorded_as_before() -> None:
    tracer = TracerProvider(sampler=TraceIdRatioDroppingUnsampled(1.0)).get_tracer("test")
    with tracer.start_as_current_span("request") as root:
        child = tracer.start_span("http send")
        assert root.is_recording() and child.is_recording()  # until they end
    assert root.get_span_context().trace_flags.sampled


def test_the_service_builds_its_tracer_provider_with_the_dropping_sampler(asgi_app: Any) -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    provider = BentoMLContainer.tracer_provider.get()
    assert isinstance(provider.sampler, TraceIdRatioDroppingUnsampled)
    span = provider.get_tracer("test").start_span(
        "request", context=trace.set_span_in_context(trace.INVALID_SPAN)
    )
    assert not span.is_recording()
