"""The shards a run should have, each checked from its footer before reduce writes a byte: a
missing, unreadable, foreign, short or misplaced shard, a stray object, a mixture of code, or
a zoomed stage computed around other points than its previous stage's best, is refused with
a message naming it.
"""

from __future__ import annotations

from steps import layout
from steps.fingerprint import mixture
from steps.shards import ShardError, ShardFooterError, ShardInfo, read_shard_info, schema_difference
from steps.spec import Spec
from steps.stages import centres_problem, stage_of_shard, stages_of, total_shards
from steps.store import ObjectNotFoundError, Store

__all__ = ["verify_shards"]


def verify_shards(
    store: Store, spec: Spec, run_id: str, through: int | None = None
) -> list[ShardInfo]:
    """Every expected shard (of the stages up to `through`, else of all), checked from its
    footer; ShardError names the first bad one."""
    count = total_shards(spec)
    expected = [layout.shard_key(spec.name, run_id, i, count) for i in range(count)]
    present = set(store.list(layout.shards_prefix(spec.name, run_id)))
    strays = sorted(present - set(expected))
    if strays:
        raise ShardError(
            f"{store.url(strays[0])} is not a shard of this run ({len(strays)} unexpected object(s))"
        )
    last = stages_of(spec)[-1 if through is None else through]
    infos: list[ShardInfo] = []
    for index, key in enumerate(expected[: last.first_shard + last.shards]):
        if key not in present:
            raise ShardError(f"shard {index} is missing: {store.url(key)}")
        try:
            info = read_shard_info(store, key)
        except (ShardFooterError, ObjectNotFoundError) as exc:  # an outage stays a StoreError
            raise ShardError(f"shard {index}: {exc}") from None
        start, stop = stage_of_shard(spec, index).shard_range(index)
        problem = info.problem(spec.hash, index, count, start, stop, spec.keep.everything)
        if problem:
            raise ShardError(f"shard {index} ({store.url(key)}) {problem}")
        if infos and info.schema != infos[0].schema:
            difference = schema_difference(info.schema, infos[0].schema)
            raise ShardError(f"shard {index} ({store.url(key)}) {difference}")
        infos.append(info)
    problem = mixture([(info.index, info.code) for info in infos]) or centres_problem(spec, infos)
    if problem:
        raise ShardError(problem)
    return infos
