"""Real-time updates over WebSocket (``/ws``): availability changes of a user's titles in their
country and top-10 changes after a model promotion. :mod:`~serving.realtime.hub` keeps the
per-user event streams, :mod:`~serving.realtime.watch` computes the events on a catalogue swap,
:mod:`~serving.realtime.routes` is the WebSocket endpoint."""
