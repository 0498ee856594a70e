"""LangGraph checkpoints in plain Redis (no Redis Stack modules): :class:`RedisSaver`.

Layout, per thread (a conversation key) and namespace, every key hash-tagged by the thread
so one thread stays on one Redis Cluster slot:

* ``ckpt:{thread}:ns`` — set of the thread's namespaces;
* ``ckpt:{thread}:{ns}:cp`` — hash ``checkpoint_id → record`` (checkpoint, metadata, parent);
* ``ckpt:{thread}:{ns}:blob`` — hash ``channel \\0 version → value`` (values stored once per
  version, as LangGraph's own savers do);
* ``ckpt:{thread}:{ns}:w:{checkpoint_id}`` — hash ``task \\0 index → write``.

Checkpoint ids are UUIDv6 strings, so sorting them sorts by time. Every write refreshes the
thread's TTL. Passes ``langgraph-checkpoint-conformance`` (tests/flows).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio import Redis

from botcore.errors import FlowError
from botcore.keys import KeyBuilder

__all__ = ["RedisSaver", "checkpoint_key"]

_SEP = "\x00"


def checkpoint_key(keys: KeyBuilder, thread_id: str, *parts: str) -> str:
    """Checkpoint key names (``KeyBuilder.checkpoint``)."""
    return keys.checkpoint(thread_id, *parts)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unpack(value: bytes | str) -> Any:
    return ormsgpack.unpackb(value.encode() if isinstance(value, str) else value)


class RedisSaver(BaseCheckpointSaver[str]):
    """An async LangGraph checkpoint saver on plain Redis (5+).

    Args:
        redis: an asyncio Redis client (bytes responses).
        keys: the key builder (its prefix scopes every key).
        ttl: seconds a thread's checkpoints live after its last write.
        serde: LangGraph serializer (default: its JSON+msgpack one).

    Example:
        >>> saver = RedisSaver(runtime.redis, runtime.keys, ttl=7 * 86400)  # doctest: +SKIP
        >>> graph = builder.compile(checkpointer=saver)                      # doctest: +SKIP
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, *, ttl: int = 7 * 86_400,
                 serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.redis = redis
        self.keys = keys
        self.ttl = ttl

    # keys ------------------------------------------------------------------------------
    def _k(self, thread_id: str, ns: str, part: str) -> str:
        return checkpoint_key(self.keys, thread_id, ns, part)

    def _ns_key(self, thread_id: str) -> str:
        return checkpoint_key(self.keys, thread_id, "ns")

    def _writes_key(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return self._k(thread_id, ns, f"w:{checkpoint_id}")

    # writes ----------------------------------------------------------------------------
    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint and the channel values that changed in it."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        copy = checkpoint.copy()
        values: dict[str, Any] = copy.pop("channel_values")  # type: ignore[misc]
        blobs = {
            f"{channel}{_SEP}{version}": self._pack(
                *(self.serde.dumps_typed(values[channel]) if channel in values
                  else ("empty", b"")))
            for channel, version in new_versions.items()
        }
        ck_type, ck_bytes = self.serde.dumps_typed(copy)
        md_type, md_bytes = self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
        record = ormsgpack.packb([ck_type, ck_bytes, md_type, md_bytes,
                                  conf.get("checkpoint_id") or ""])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._ns_key(thread_id), ns)
            pipe.hset(self._k(thread_id, ns, "cp"), checkpoint["id"], record)
            if blobs:
                pipe.hset(self._k(thread_id, ns, "blob"), mapping=blobs)  # type: ignore[arg-type]
            for key in (self._ns_key(thread_id), self._k(thread_id, ns, "cp"),
                        self._k(thread_id, ns, "blob")):
                pipe.expire(key, self.ttl)
            await pipe.execute()
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        """Store a task's pending writes (idempotent per task and index)."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        key = self._writes_key(thread_id, ns, str(conf["checkpoint_id"]))
        async with self.redis.pipeline(transaction=True) as pipe:
            for idx, (channel, value) in enumerate(writes):
                index = WRITES_IDX_MAP.get(channel, idx)
                field = f"{task_id}{_SEP}{index}"
                v_type, v_bytes = self.serde.dumps_typed(value)
                packed = ormsgpack.packb([task_id, channel, v_type, v_bytes, task_path, idx])
                if index >= 0:
                    pipe.hsetnx(key, field, packed)
                else:  # special channels (errors, interrupts) are overwritten
                    pipe.hset(key, field, packed)
            pipe.sadd(self._ns_key(thread_id), ns)
            pipe.expire(key, self.ttl)
            pipe.expire(self._ns_key(thread_id), self.ttl)
            await pipe.execute()

    async def adelete_thread(self, thread_id: str) -> None:
        """Forget every checkpoint and write of a thread."""
        namespaces = [_s(ns) for ns in await self.redis.smembers(self._ns_key(thread_id))]
        doomed = [self._ns_key(thread_id)]
        for ns in namespaces:
            ids = [_s(i) for i in await self.redis.hkeys(self._k(thread_id, ns, "cp"))]
            doomed += [self._k(thread_id, ns, "cp"), self._k(thread_id, ns, "blob")]
            doomed += [self._writes_key(thread_id, ns, cid) for cid in ids]
        await self.redis.delete(*doomed)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, values and writes to another thread id."""
        for ns in [_s(n) for n in await self.redis.smembers(self._ns_key(source_thread_id))]:
            parts = ["cp", "blob"] + [
                f"w:{_s(cid)}" for cid in await self.redis.hkeys(
                    self._k(source_thread_id, ns, "cp"))]
            for part in parts:
                found = await self.redis.hgetall(self._k(source_thread_id, ns, part))
                if not found:
                    continue
                target = self._k(target_thread_id, ns, part)
                await self.redis.hset(target, mapping=dict(found))  # type: ignore[arg-type]
                await self.redis.expire(target, self.ttl)
            await self.redis.sadd(self._ns_key(target_thread_id), ns)
            await self.redis.expire(self._ns_key(target_thread_id), self.ttl)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint per namespace (``keep_latest``) or none."""
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
                continue
            for ns in [_s(n) for n in await self.redis.smembers(self._ns_key(thread_id))]:
                ids = sorted(_s(i) for i in await self.redis.hkeys(self._k(thread_id, ns, "cp")))
                old = ids[:-1]
                if old:
                    await self.redis.hdel(self._k(thread_id, ns, "cp"), *old)
                    await self.redis.delete(*[self._writes_key(thread_id, ns, c) for c in old])

    # reads -----------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's newest one."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            ids = [_s(i) for i in await self.redis.hkeys(self._k(thread_id, ns, "cp"))]
            if not ids:
                return None
            checkpoint_id = max(ids)
        raw = await self.redis.hget(self._k(thread_id, ns, "cp"), checkpoint_id)
        if raw is None:
            return None
        return await self._tuple(thread_id, ns, checkpoint_id, raw)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, filtered by thread, namespace, metadata and cursor."""
        if config is None:
            raise FlowError("RedisSaver.alist needs a thread_id (listing every thread of a "
                            "deployment is not supported)", flow="checkpoint")
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        wanted_ns = conf.get("checkpoint_ns")
        namespaces = [_s(n) for n in await self.redis.smembers(self._ns_key(thread_id))]
        before_id = get_checkpoint_id(before) if before else None
        only_id = get_checkpoint_id(config)
        remaining = limit
        for ns in sorted(namespaces):
            if wanted_ns is not None and ns != wanted_ns:
                continue
            records = await self.redis.hgetall(self._k(thread_id, ns, "cp"))
            for cid_raw, raw in sorted(records.items(), key=lambda kv: _s(kv[0]), reverse=True):
                cid = _s(cid_raw)
                if (only_id and cid != only_id) or (before_id and cid >= before_id):
                    continue
                if filter and not self._matches(raw, filter):
                    continue
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield await self._tuple(thread_id, ns, cid, raw)

    # sync API: this saver is async-only (workers run flows with ainvoke) ----------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Not supported: use :meth:`aget_tuple`."""
        raise FlowError("RedisSaver is async-only: use ainvoke/astream", flow="checkpoint")

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None,
             limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Not supported: use :meth:`alist`."""
        raise FlowError("RedisSaver is async-only: use ainvoke/astream", flow="checkpoint")

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Not supported: use :meth:`aput`."""
        raise FlowError("RedisSaver is async-only: use ainvoke/astream", flow="checkpoint")

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        """Not supported: use :meth:`aput_writes`."""
        raise FlowError("RedisSaver is async-only: use ainvoke/astream", flow="checkpoint")

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic, sortable version strings (as LangGraph's own savers make them)."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{0:016}"

    # helpers ---------------------------------------------------------------------------
    @staticmethod
    def _pack(type_: str, data: bytes) -> bytes:
        return ormsgpack.packb([type_, data])

    def _matches(self, raw: bytes | str, filter: dict[str, Any]) -> bool:
        _, _, md_type, md_bytes, _ = _unpack(raw)
        metadata = self.serde.loads_typed((md_type, md_bytes))
        return all(metadata.get(k) == v for k, v in filter.items())

    async def _tuple(self, thread_id: str, ns: str, checkpoint_id: str,
                     raw: bytes | str) -> CheckpointTuple:
        ck_type, ck_bytes, md_type, md_bytes, parent = _unpack(raw)
        checkpoint = cast(Checkpoint, self.serde.loads_typed((ck_type, ck_bytes)))
        fields = [f"{c}{_SEP}{v}" for c, v in checkpoint["channel_versions"].items()]
        values: dict[str, Any] = {}
        if fields:
            found = await self.redis.hmget(self._k(thread_id, ns, "blob"), fields)
            for name, blob in zip(checkpoint["channel_versions"], found, strict=True):
                if blob is None:
                    continue
                b_type, b_bytes = _unpack(blob)
                if b_type != "empty":
                    values[name] = self.serde.loads_typed((b_type, b_bytes))
        writes_raw = await self.redis.hgetall(self._writes_key(thread_id, ns, checkpoint_id))
        writes = sorted((_unpack(w) for w in writes_raw.values()),
                        key=lambda w: writes_sort_key(w[4], w[0], w[5]))
        parent_config: RunnableConfig | None = None
        if parent:
            parent_config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                              "checkpoint_id": parent}}
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                     "checkpoint_id": checkpoint_id}},
            checkpoint={**checkpoint, "channel_values": values},
            metadata=cast(CheckpointMetadata, self.serde.loads_typed((md_type, md_bytes))),
            parent_config=parent_config,
            pending_writes=[(w[0], w[1], self.serde.loads_typed((w[2], w[3])))
                            for w in writes],
        )
