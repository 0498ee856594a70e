"""End-to-end throughput: webhook → inbox → worker → chat flow → reply recorded.

Run ``python -m bench.e2e``. See bench/README.md.
"""
