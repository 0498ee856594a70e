"""The web layer: FastAPI app factory, webhook route, health probes, web chat."""
