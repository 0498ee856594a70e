"""Durable ingress: dedupe, the per-conversation inbox, the drain loop and the sweeper.

See ``docs/reliability.md`` for the algorithm and what each crash point leads to.
"""
