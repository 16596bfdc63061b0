"""`GroupCommit`: items that queue while a batch is written form the next batch; a lone
item is written at once; a failed batch fails each of its items and no other."""

from __future__ import annotations

import asyncio

import pytest

from service.group_commit import GroupCommit


def test_batches_form_while_the_previous_one_is_written() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()  # the first batch is slow: the rest queue meanwhile
        return [i * 10 for i in items]

    async def main() -> list[int]:
        group = GroupCommit(flush, max_batch=3)
        first = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(group.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(first, *rest))

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3], [4, 5]]


def test_a_failed_batch_fails_its_items_and_the_next_batch_goes_on() -> None:
    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 1 in items:
            raise RuntimeError("database down")
        return items

    async def main() -> tuple[list[object], int]:
        group = GroupCommit(flush)
        first = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0)
        failing = [asyncio.create_task(group.submit(i)) for i in (1, 2)]
        results = await asyncio.gather(first, *failing, return_exceptions=True)
        return list(results), await group.submit(3)

    results, after = asyncio.run(main())
    assert results[0] == 0 and after == 3
    assert [str(r) for r in results[1:]] == ["database down", "database down"]


def test_a_cancelled_submitter_does_not_stop_its_batch() -> None:
    written: list[int] = []

    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0.01)
        written.extend(items)
        return items

    async def main() -> int:
        group = GroupCommit(flush)
        gone = asyncio.create_task(group.submit(1))
        kept = asyncio.create_task(group.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await kept

    assert asyncio.run(main()) == 2 and written == [1, 2]
