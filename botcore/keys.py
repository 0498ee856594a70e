"""Every Redis key botcore writes is named here, and only here.

A deployment can share one Redis between several botcore installs by giving each its own
``prefix``. Keys that belong to one conversation embed its id in braces (a Redis Cluster hash
tag), so the Lua scripts that touch a conversation's inbox, lease and flags stay on one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeyBuilder"]


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    """Builds Redis key names. The single place key formats live (style rule R7)."""

    prefix: str = "botcore"

    def _conv(self, family: str, conversation_id: str) -> str:
        return f"{self.prefix}:{family}:{{{conversation_id}}}"

    # ingress ---------------------------------------------------------------------------
    def dedupe(self, dedupe_key: str) -> str:
        """``SET NX`` marker for one platform delivery."""
        return f"{self.prefix}:dedupe:{dedupe_key}"

    def inbox(self, conversation_id: str) -> str:
        """The conversation's pending messages (a list, head = oldest)."""
        return self._conv("inbox", conversation_id)

    def scheduled(self, conversation_id: str) -> str:
        """Set while a drain task for the conversation is queued and not yet started."""
        return self._conv("scheduled", conversation_id)

    def lease(self, conversation_id: str) -> str:
        """Who drains the conversation now: a fencing token with an expiry."""
        return self._conv("lease", conversation_id)

    def lease_seq(self, conversation_id: str) -> str:
        """Counter that hands out increasing fencing tokens."""
        return self._conv("leaseseq", conversation_id)

    def attempts(self, conversation_id: str, event_id: str) -> str:
        """How many times a message's turn was started."""
        return self._conv("attempts", conversation_id) + f":{event_id}"

    def dead_letters(self) -> str:
        """Messages that failed too often, with their error (one list for the deployment)."""
        return f"{self.prefix}:dlq"

    def dirty(self) -> str:
        """Conversations that may hold pending messages; what the sweeper scans."""
        return f"{self.prefix}:dirty"

    def sent(self, idempotency_key: str) -> str:
        """Record of one reply: ``sending`` before the platform call, ``done`` after."""
        return f"{self.prefix}:sent:{idempotency_key}"

    def turn_done(self, conversation_id: str, event_id: str) -> str:
        """Marks a turn's history as written, so a re-run after a crash does not repeat it."""
        return self._conv("turn", conversation_id) + f":{event_id}"

    # sessions --------------------------------------------------------------------------
    def session(self, conversation_id: str, part: str) -> str:
        """A part of a conversation's session: ``history``, ``vars`` or ``state``."""
        return self._conv("session", conversation_id) + f":{part}"

    # outbound --------------------------------------------------------------------------
    def token(self, channel: str, app_id: str) -> str:
        """A platform access token shared by all workers."""
        return f"{self.prefix}:token:{channel}:{app_id}"

    def token_lock(self, channel: str, app_id: str) -> str:
        """Lock held by the one worker that refreshes a token."""
        return f"{self.prefix}:tokenlock:{channel}:{app_id}"

    def rate(self, channel: str, scope: str) -> str:
        """A token bucket for one outbound rate limit."""
        return f"{self.prefix}:rate:{channel}:{scope}"

    def nonce(self, channel: str, nonce: str) -> str:
        """Replay guard for a signed request's nonce."""
        return f"{self.prefix}:nonce:{channel}:{nonce}"

    def channel_state(self, channel: str, bot_id: str, name: str) -> str:
        """Short-lived state an adapter keeps between callbacks (e.g. WeCom AI-bot streams)."""
        return f"{self.prefix}:chan:{channel}:{bot_id}:{name}"

    # flows ---------------------------------------------------------------------------
    def checkpoint(self, thread_id: str, *parts: str) -> str:
        """LangGraph checkpoints of one thread (the conversation id)."""
        return ":".join([self._conv("ckpt", thread_id), *parts])

    def handoff(self, conversation_id: str, *parts: str) -> str:
        """A conversation handed to a human agent (state, ``log``)."""
        return ":".join([self._conv("handoff", conversation_id), *parts])

    def handoff_open(self, bot_id: str) -> str:
        """The set of a bot's conversations waiting for or held by a human agent."""
        return f"{self.prefix}:handoff:open:{bot_id}"

    def usage(self, scope: str, ident: str) -> str:
        """Token usage of a bot (``scope="bot"``) or a conversation (``"conv"``)."""
        if scope == "conv":
            return self._conv("usage:conv", ident)
        return f"{self.prefix}:usage:{scope}:{ident}"

    def feedback(self, bot_id: str, conversation_id: str, message_id: str) -> str:
        """A user's rating of one answer."""
        return f"{self.prefix}:feedback:{bot_id}:{{{conversation_id}}}:{message_id}"

    # web chat --------------------------------------------------------------------------
    def web_outbox(self, conversation_id: str) -> str:
        """The web chat's reply stream (a Redis stream the browser reads through SSE)."""
        return self._conv("webout", conversation_id)

    # workers ---------------------------------------------------------------------------
    def worker_heartbeat(self, worker_id: str) -> str:
        """A live worker's heartbeat key (tests and benchmarks wait on it)."""
        return f"{self.prefix}:worker:{worker_id}"

    def api_cursor(self, conversation_id: str) -> str:
        """The last reply-stream id the OpenAI API checked for agent messages."""
        return self._conv("apicursor", conversation_id)

    def kb_job(self, job_id: str) -> str:
        """A knowledge-base job handed to the worker (state and report as JSON)."""
        return f"{self.prefix}:kbjob:{job_id}"

    def workers(self) -> str:
        """Sorted set of live workers scored by their last heartbeat (Redis's clock): what
        ``/readyz`` counts with one ZCOUNT."""
        return f"{self.prefix}:workers"

    def metrics(self) -> str:
        """Counters the workers add to (turns, failures, dead letters)."""
        return f"{self.prefix}:metrics:workers"

    def worker_pattern(self) -> str:
        """Match every worker heartbeat key."""
        return f"{self.prefix}:worker:*"
