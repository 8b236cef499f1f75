"""The routing-state store on Redis (or Valkey): one Lua script per exchange, one round trip.

Keys, under the configured prefix `P`, per endpoint `E` (`model@api_base`):

- `P:ep:E`, a hash: `failures` in a row, `open_until` (server milliseconds) while ejected,
  `rest_until` and `loading` while resting, the latest `error`, the server's `load`, when
  (`load_at`) and by whom (`load_by`) it was read. It expires a while after its last write
  (`_KEEP_MS`), so a config long gone leaves nothing behind.
- `P:probe:E`, the process holding the endpoint's probe (`SET NX`): at most one.
- `P:proc:ID`, a hash of one process's requests in flight per endpoint, rewritten at every
  exchange and expiring after a few intervals without one: a process that crashed stops
  counting on its own, and no count can drift below zero. `P:procs` lists the live ones.

Times are the Redis server's (`TIME`), so the processes' clocks need not agree. The script
names its keys in its arguments, which a Redis Cluster does not allow: use one server (with
replicas, or Sentinel) for this state.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from selfhosted_core._sharing import Outbox, Shared, StateUnavailable
from selfhosted_core.config import RoutingState
from selfhosted_core.errors import ConfigurationError

__all__ = ["RedisStore", "describe"]

_KEEP_MS = 3_600_000
"""How long an endpoint's shared record outlives its last write."""

_SCRIPT = """
local box = cjson.decode(ARGV[1])
local p, me, ttl, eps = box.prefix, box.id, box.ttl, box.eps
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ep(i) return p .. ':ep:' .. eps[i + 1] end
local function probe(i) return p .. ':probe:' .. eps[i + 1] end
local mine = p .. ':proc:' .. me
redis.call('DEL', mine)
for i, n in ipairs(box.in_flight) do
  if n > 0 then redis.call('HSET', mine, eps[i], n) end
end
redis.call('PEXPIRE', mine, ttl)
redis.call('ZADD', p .. ':procs', now + ttl, me)
redis.call('ZREMRANGEBYSCORE', p .. ':procs', '-inf', now)
for _, op in ipairs(box.ops) do
  local kind, i, ms = op[1], op[2], math.floor(op[3] * 1000)
  local k = ep(i)
  if kind == 'fail' then
    redis.call('HINCRBY', k, 'failures', 1)
    redis.call('HSET', k, 'error', op[4])
  elseif kind == 'clear' then
    redis.call('HSET', k, 'failures', 0)
  elseif kind == 'open' then
    local ends = tonumber(redis.call('HGET', k, 'open_until'))
    if not ends or ends <= now then
      redis.call('HSET', k, 'open_until', now + ms)
      if op[4] ~= '' then redis.call('HSET', k, 'error', op[4]) end
      redis.call('DEL', probe(i))
    end
  elseif kind == 'restore' then
    redis.call('HDEL', k, 'open_until', 'failures', 'rest_until', 'loading')
    redis.call('DEL', probe(i))
  elseif kind == 'rest' then
    local old = tonumber(redis.call('HGET', k, 'rest_until')) or 0
    if now + ms > old then redis.call('HSET', k, 'rest_until', now + ms) end
    redis.call('HSET', k, 'loading', op[5] and 1 or 0, 'error', op[4])
  elseif kind == 'release' then
    if redis.call('GET', probe(i)) == me then redis.call('DEL', probe(i)) end
  elseif kind == 'load' then
    redis.call('HSET', k, 'load', math.floor(op[3]), 'load_at', now, 'load_by', me)
  end
  redis.call('PEXPIRE', k, box.keep)
end
for _, i in ipairs(box.claims) do
  local ends = tonumber(redis.call('HGET', ep(i), 'open_until'))
  if ends and ends <= now then redis.call('SET', probe(i), me, 'NX', 'PX', ttl) end
end
for _, i in ipairs(box.probing) do
  if redis.call('GET', probe(i)) == me then redis.call('PEXPIRE', probe(i), ttl) end
end
local elsewhere = {}
for i = 1, #eps do elsewhere[i] = 0 end
for _, other in ipairs(redis.call('ZRANGE', p .. ':procs', 0, -1)) do
  if other ~= me then
    local counts = redis.call('HMGET', p .. ':proc:' .. other, unpack(eps))
    for i = 1, #eps do elsewhere[i] = elsewhere[i] + (tonumber(counts[i]) or 0) end
  end
end
local out = {}
for i = 1, #eps do
  local f = redis.call('HMGET', ep(i - 1), 'failures', 'open_until', 'rest_until', 'loading',
    'error', 'load', 'load_at', 'load_by')
  local theirs = f[6] and f[8] ~= me
  out[i] = {
    tonumber(f[1]) or 0,
    f[2] and (tonumber(f[2]) - now) or false,
    math.max(0, (tonumber(f[3]) or now) - now),
    f[4] == '1',
    f[5] or false,
    redis.call('GET', probe(i - 1)) == me,
    elsewhere[i],
    theirs and tonumber(f[6]) or false,
    theirs and (now - tonumber(f[7])) or false,
  }
end
return cjson.encode(out)
"""


def describe(state: RoutingState) -> str:
    """The server as messages name it: `Redis at host:port` (never the password)."""
    assert state.url is not None, "validated: backend redis has a url"
    parts = urlsplit(state.url.get_secret_value())
    if parts.scheme == "unix":
        return f"Redis at {parts.path}"
    return f"Redis at {parts.hostname}:{parts.port or 6379}"


class RedisStore:
    """Shares routing state through one Redis server (see the module docstring).

    Args:
        state: The `routing.state` settings.
        endpoints: Each slot's name in the keys (`model@api_base`), in slot order.

    Raises:
        ConfigurationError: The `redis` package is missing (`pip install
            'selfhosted-llm[redis]'`).
    """

    def __init__(self, state: RoutingState, endpoints: Sequence[str]) -> None:
        try:
            import redis  # noqa: PLC0415 - the optional extra, imported only when configured
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.retry import Retry  # noqa: PLC0415
        except ImportError:
            raise ConfigurationError(
                "routing.state.backend: redis needs the redis package: "
                "pip install 'selfhosted-llm[redis]'"
            ) from None
        assert state.url is not None, "validated: backend redis has a url"
        self._errors = redis.RedisError
        self._auth_errors = redis.AuthenticationError
        self._where = describe(state)
        self._has_password = urlsplit(state.url.get_secret_value()).password is not None
        # Bounded: a Redis that hangs costs the sync thread `timeout`, never a request.
        self._client: Any = redis.Redis.from_url(
            state.url.get_secret_value(),
            socket_connect_timeout=state.timeout,
            socket_timeout=state.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._script: Any = self._client.register_script(_SCRIPT)
        self._prefix = state.prefix
        self._endpoints = list(endpoints)
        # A process stops counting once it missed ten exchanges (at least 1 s).
        self._ttl = max(1000, int(state.sync_interval * 10_000))
        self._pid = -1
        self._id = ""

    @property
    def process(self) -> str:
        """This process's id in the keys: host, pid and a random part (new after a fork)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._id = f"{socket.gethostname()}:{self._pid}:{secrets.token_hex(4)}"
        return self._id

    def check(self) -> None:
        """Ping the server; one out of reach is left to the first exchange to report.

        Raises:
            ConfigurationError: It refused the credentials in the URL (or asked for some).
        """
        try:
            self._client.ping()
        except self._auth_errors:
            what = (
                "refused the credentials (wrong user or password)"
                if self._has_password
                else "requires a password; put it in the URL (redis://:password@host:port)"
            )
            raise ConfigurationError(f"routing.state.url: {self._where} {what}") from None
        except self._errors:
            pass

    def exchange(self, outbox: Outbox) -> list[Shared]:
        """One round trip: send `outbox`, get every endpoint's shared standing back."""
        box = {
            "prefix": self._prefix,
            "id": self.process,
            "ttl": self._ttl,
            "keep": _KEEP_MS,
            "eps": self._endpoints,
            "in_flight": list(outbox.in_flight),
            "ops": [list(op) for op in outbox.ops],
            "claims": list(outbox.claims),
            "probing": list(outbox.probing),
        }
        try:
            raw = self._script(args=[json.dumps(box)])
        except self._errors as exc:
            # Only the type: redis-py's messages are its own, and a URL is ours to hide.
            raise StateUnavailable(f"{type(exc).__name__}") from None
        return [
            Shared(
                failures=int(row[0]),
                ejected_for=None if row[1] is False else row[1] / 1000,
                rest_for=row[2] / 1000,
                loading=bool(row[3]),
                error=row[4] or None,
                probe=bool(row[5]),
                elsewhere=int(row[6]),
                load=None if row[7] is False else int(row[7]),
                load_age=None if row[8] is False else row[8] / 1000,
            )
            for row in json.loads(raw)
        ]

    def close(self) -> None:
        """Leave: this process's requests in flight stop counting now; close the connections.

        A later exchange joins again (and opens a connection).
        """
        me = self.process
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.delete(f"{self._prefix}:proc:{me}")
            pipe.zrem(f"{self._prefix}:procs", me)
            pipe.execute()
        except self._errors:
            pass  # out of reach: the record expires on its own
        self._client.close()
