"""Fake upstreams and the harness that runs them (and the gateway) on real sockets.

The fake upstreams are the simulated providers in :mod:`meterline.sim`, which reproduce each
provider's wire format (headers, SSE framing, usage blocks, error bodies, 429 + retry-after);
here they run deterministically, with failures scripted per test.
"""
