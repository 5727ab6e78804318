"""The read cache's contract, with reads of its own: read-through, invalidation, generations, warming."""

from core import read_cache
from core.read_cache import CachedRead


class CountingRead:
    """A read whose value is given by the test; counts how often it was built."""

    def __init__(self, name: str, value):
        self.value, self.builds = value, 0
        self.read = CachedRead(name, self._build)

    def _build(self):
        self.builds += 1
        return self.value


def test_a_read_is_built_once_then_served_from_the_cache():
    page = CountingRead("page:1", {"rows": [1, 2]})

    assert read_cache.fetch(page.read) == ({"rows": [1, 2]}, False)
    page.value = {"rows": "changed meanwhile"}
    assert read_cache.fetch(page.read) == ({"rows": [1, 2]}, True)
    assert page.builds == 1


def test_nothing_to_show_is_neither_cached_nor_counted():
    missing = CountingRead("page:404", None)

    assert read_cache.fetch(missing.read) == (None, False)
    assert read_cache.fetch(missing.read) == (None, False)
    assert missing.builds == 2
    assert read_cache.most_read(reads=[missing.read], limit=5) == []


def test_a_value_warmed_while_a_read_was_built_is_kept():
    def build_while_a_refresh_warms():
        read_cache.warm(reads=[CachedRead("page:1", lambda: "newer")])
        return "older"

    assert read_cache.fetch(CachedRead("page:1", build_while_a_refresh_warms)) == ("older", False)
    assert read_cache.fetch(CachedRead("page:1", lambda: "unused")) == ("newer", True)


def test_invalidate_drops_exactly_the_named_entries():
    first, second = CountingRead("page:1", 1), CountingRead("page:2", 2)
    read_cache.fetch(first.read)
    read_cache.fetch(second.read)

    read_cache.invalidate(names=["page:1", "page:never-cached"])

    assert read_cache.fetch(first.read) == (1, False)
    assert read_cache.fetch(second.read) == (2, True)


def test_a_new_generation_orphans_every_entry():
    page = CountingRead("page:1", 1)
    read_cache.fetch(page.read)
    before = read_cache.generation()

    assert read_cache.invalidate_everything() == before + 1 == read_cache.generation()
    assert read_cache.fetch(page.read) == (1, False)


def test_most_read_ranks_reads_by_their_count_across_generations():
    reads = {name: CachedRead(name, lambda: "value") for name in ("a", "b", "c", "unread")}
    for name, times in (("a", 1), ("b", 3), ("c", 1)):
        for _ in range(times):
            read_cache.fetch(reads[name])
    read_cache.invalidate_everything()  # counts outlive generations

    ranked = read_cache.most_read(reads=list(reads.values()), limit=2)

    assert [read.name for read in ranked] == ["b", "a"]  # ties by name
    assert read_cache.most_read(reads=list(reads.values()), limit=0) == []


def test_warm_stores_what_each_read_builds_and_names_what_it_stored():
    shown, empty = CountingRead("page:1", [1]), CountingRead("page:2", None)

    assert read_cache.warm(reads=[shown.read, empty.read]) == ["page:1"]
    assert read_cache.fetch(shown.read) == ([1], True)
    assert shown.builds == 1
