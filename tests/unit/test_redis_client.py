"""botcore's Redis clients: read timeouts longer than any block botcore sends."""

from __future__ import annotations

import pytest

from botcore.redis_client import (
    MAX_BLOCK_MS,
    SOCKET_TIMEOUT_S,
    clamp_block_ms,
    connect,
    connect_sync,
)


@pytest.mark.parametrize(("asked", "sent"), [(0, 1), (-5, 1), (300, 300),
                                             (MAX_BLOCK_MS, MAX_BLOCK_MS),
                                             (10 * MAX_BLOCK_MS, MAX_BLOCK_MS)])
def test_block_is_clamped(asked: int, sent: int) -> None:
    assert clamp_block_ms(asked) == sent


def test_clients_wait_longer_than_the_longest_block() -> None:
    assert SOCKET_TIMEOUT_S * 1000 > MAX_BLOCK_MS
    for client in (connect("redis://127.0.0.1:1/0"), connect_sync("redis://127.0.0.1:1/0")):
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == SOCKET_TIMEOUT_S
        assert kwargs["socket_keepalive"] is True


def test_overrides_win() -> None:
    client = connect("redis://127.0.0.1:1/0", socket_connect_timeout=0.5, decode_responses=True)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.5
    assert kwargs["decode_responses"] is True


async def test_a_long_block_returns_empty_instead_of_timing_out(clean_redis: str) -> None:
    """6 s XREAD BLOCK, beyond redis-py's 5 s default read timeout."""
    client = connect(clean_redis)
    try:
        assert await client.xread({"botcore-test:nothing": "$"}, block=6_000) == []
    finally:
        await client.aclose()
