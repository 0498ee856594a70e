"""Webhook ingress benchmark: botcore's durable route against a bare FastAPI endpoint.

Run ``python -m bench.ingress``. See bench/README.md.
"""
