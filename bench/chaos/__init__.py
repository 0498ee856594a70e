"""Kill-chaos benchmark: the durable inbox against one Celery task per message.

Run ``python -m bench.chaos``. See bench/README.md.
"""
