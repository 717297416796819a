"""Writes to Django's ``RedisCache`` through one Lua script: monotonic, epoch- and server-checked.

A version in Redis only grows in absolute value, and nothing is written into an epoch or to a
server that is no longer live (see ``store.epoch``); a pending mark keeps the version it replaced
and names the version its bump commits, and only that version or a later one replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final

from django_conditional import fastcache, redis_adapter
from django_conditional.store import epoch, fence

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django_conditional")


# KEYS[1]: the epoch key, KEYS[2..]: version keys. ARGV[1]: ttl (0: none), ARGV[2]: the epoch the
# caller writes into, ARGV[3]: "fill", "publish", "mark" or "set", ARGV[4]: the identity of the server
# the caller believes it writes to (``redis_adapter.server_identity``), ARGV[5]: the writer's fence in ms, ARGV[6..]: the values. Nothing is
# written unless that server and that epoch are still live. Versions only grow in absolute value:
# neither a slow publisher nor a reader that read the database before a commit moves one back; a
# reader's fill never replaces anything (a pending mark included); a publication replaces a mark
# only with the version the mark names or a later one; "mark" and "set" (corrections) replace
# anything. The last element of the reply is how long (ms) the writer must wait before
# its response leaves: local copies of a replaced key may be in use (its holder mark, see
# ``store.local``): a reader's mark ("1") asks for a whole fence and becomes a writer's ("0") that
# lasts as long; a writer's mark still there asks for what is left of it; no mark, no wait.
_WRITE: Final = """
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
if replid then server = server .. '.' .. replid end
if server ~= ARGV[4] then return {'server', server} end
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[2] then return {'epoch', epoch or ''} end
-- The version in a value: a plain number, a stamp ("V<version>|<ms>"), or what a mark kept.
local function version(raw)
  if not raw then return nil end
  return tonumber(raw) or tonumber(string.match(raw, '^V(%-?%d+)|'))
    or tonumber(string.match(raw, 'pending:(%-?%d+)'))
end
local ttl = tonumber(ARGV[1])
local mode = ARGV[3]
local fence = tonumber(ARGV[5])
local result = {}
local wait = 0
for i = 2, #KEYS do
  local value = ARGV[i + 4]
  local raw = redis.call('GET', KEYS[i])
  local old = version(raw)
  local write = mode == 'set'
  if mode == 'mark' then
    write = true
    -- A pickle (protocol 0) of the text "pending:<kept>:<coming>": the version it replaced and
    -- the one its bump commits. Django's serializer reads it.
    value = 'Vpending:' .. (old or 0) .. ':' .. value .. '\\n.'
  elseif mode == 'publish' then
    local new = math.abs(version(value))
    -- A mark falls only to its own bump or a later one: an earlier bump's late publication
    -- must not lift the mark of a bump still committing (or whose writer died after the commit).
    local coming = raw and tonumber(string.match(raw, 'pending:%-?%d+:(%-?%d+)'))
    write = ((not old) or math.abs(old) < new) and ((not coming) or math.abs(coming) <= new)
  elseif mode == 'fill' then
    write = not raw
  end
  if write and mode ~= 'fill' then
    local mark = 'held|' .. KEYS[i]
    local left = redis.call('PTTL', mark)
    if left > 0 then
      if redis.call('GET', mark) == '1' then
        redis.call('SET', mark, '0', 'PX', fence)
        left = fence
      end
      if left > wait then wait = left end
    end
  end
  if write then
    if ttl > 0 then
      redis.call('SET', KEYS[i], value, 'EX', ttl)
    else
      redis.call('SET', KEYS[i], value)
    end
    result[i - 1] = value
  else
    result[i - 1] = raw
  end
end
result[#KEYS] = wait
return result
"""


class EpochMoved(Exception):
    """The server or the epoch a writer wrote into is no longer live (a flush, a restart)."""

    def __init__(self, server: str | None = None) -> None:
        super().__init__(server)
        self.server = server


class MonotonicWriter:
    """Writes versions to the primary of Django's ``RedisCache`` through the ``_WRITE`` script."""

    def __init__(self, described: redis_adapter.RedisBackend) -> None:
        self.described = described
        self.client = described.primary_client()
        self.script: Any = self.client.register_script(_WRITE)
        self.make_key = described.make_key

    def write(
        self,
        mode: str,
        server: str | None,
        into: int,
        values: Mapping[str, object],
        timeout: int | None,
    ) -> dict[str, object]:
        """Run the script over ``values`` (version key -> value) in epoch ``into``; what the
        keys hold afterwards. ``EpochMoved`` when ``into`` is not live."""
        if not values or (timeout is not None and timeout <= 0):
            return dict(values)  # Django's meaning of a timeout <= 0: do not cache
        start = epoch.prefix(into)
        made = [self.make_key(start + key) for key in values]
        fence_ms = fence.fence_ms()
        after = self.script(
            keys=[self.make_key(epoch.key(server)), *made],
            args=[timeout or 0, into, mode, server or "", fence_ms, *values.values()],
        )
        if after and after[0] == b"server":
            raise EpochMoved(after[1].decode())
        if after and after[0] == b"epoch":
            raise EpochMoved(server)
        fence.fence_for(int(after[-1]) / 1000)
        return dict(zip(values, after[:-1], strict=True))


class _CacheEpochs:
    """The epoch key through the cache API (any backend)."""

    def __init__(self, backend: BaseCache) -> None:
        self.backend = backend

    def get(self, name: str) -> object:
        return self.backend.get(name)

    def add(self, name: str, value: int) -> object:
        return self.backend.add(name, value, None)

    def delete(self, name: str) -> object:
        return self.backend.delete(name)

    def retire_others(self, server: str | None) -> bool:
        return True  # one server, or replicas Django never writes to


class _PrimaryEpochs:
    """The epoch key on the primary of a Redis cache (never a lagging replica)."""

    def __init__(self, writer: MonotonicWriter, backend: BaseCache) -> None:
        self.writer = writer
        self.backend = backend

    def get(self, name: str) -> object:
        raw = self.writer.client.get(self.writer.make_key(name))
        if raw == epoch.RETIRED.encode():
            leave(self.writer, self.backend)
        return raw

    def retire_others(self, server: str | None) -> bool:
        if self.writer.described.group is None:
            return True  # one server (or replicas never written to)
        if not retire_peers(self.writer.described, server):
            return False
        fence.fence_now()  # copies read from a former master: unused once ``T`` has passed
        return True

    def add(self, name: str, value: int) -> object:
        return self.writer.client.set(self.writer.make_key(name), value, nx=True)

    def delete(self, name: str) -> object:
        return self.writer.client.delete(self.writer.make_key(name))


def epoch_store(backend: BaseCache) -> epoch.EpochStore:
    """Where the epoch key is read and made: the primary on Redis, else the cache API."""
    writer = monotonic_writer(backend)
    return _CacheEpochs(backend) if writer is None else _PrimaryEpochs(writer, backend)


def leave(writer: MonotonicWriter, backend: BaseCache) -> None:
    """This server was retired by a failover: close the idle connections to it, so the next
    command asks Sentinel where the master is now. Connections in use by other threads are not
    cut under them (their requests would fail): a Sentinel pool drops them when they come back,
    once it has learnt the new master's address."""
    pool = writer.client.connection_pool
    pool.disconnect(inuse_connections=False)
    with suppress(Exception):
        getattr(pool, "get_master_address", lambda: None)()
    fastcache.reconnect(backend)


def retire_peers(described: redis_adapter.RedisBackend, server: str | None) -> bool:
    """Before the first epoch on ``server`` (Sentinel): whether it may be made. Every server the
    sentinels list that still says it is a master, other than the one a majority of them names,
    gets ``retired`` in its epoch key (and a copy on ``server``, which replication carries to it
    if it resyncs). Not safe: no majority, ``server`` is not the master they name, or a listed
    server could not be asked (then the database answers, and the next read tries again)."""
    assert described.group is not None
    group = described.group()
    if group.master is None:
        logger.warning("django_conditional: the sentinels name no master by a majority")
        return False
    safe, retired = True, []
    for host, port in sorted(group.servers):
        try:
            with described.peer_client(host, port) as peer:
                info = peer.info()
                other = redis_adapter.server_identity(info)
                if (host, port) == group.master:
                    safe = (
                        safe and other == server
                    )  # else: not where the sentinels point
                elif info.get("role") == "master" and other not in (None, server):
                    peer.set(described.make_key(epoch.key(other)), epoch.RETIRED)
                    retired.append(other)
                    logger.warning(
                        "django_conditional: retired the former master %s:%s",
                        host,
                        port,
                    )
        except Exception as exc:
            if type(exc).__name__ == "ReadOnlyError":
                continue  # demoted meanwhile: a replica is never read
            logger.warning(
                "django_conditional: could not retire %s:%s (%s)", host, port, exc
            )
            safe = False
    client = described.primary_client()
    for other in retired:
        client.set(described.make_key(epoch.key(other)), epoch.RETIRED)
    return safe


_WRITER: Final = "_django_conditional_writer"


def monotonic_writer(backend: BaseCache) -> MonotonicWriter | None:
    """The writer of ``backend`` (one per cache object), None off Django's RedisCache."""
    described = redis_adapter.backend(backend)
    if described is None or not described.plain_ints:
        return None  # the script writes plain integers, as Django's own serializer does
    writer: MonotonicWriter | None = backend.__dict__.get(_WRITER)
    if writer is None:
        writer = backend.__dict__[_WRITER] = MonotonicWriter(described)
    return writer
