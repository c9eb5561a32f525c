"""StateStore: the lock that keeps two runs apart, pending.json, and the atomic commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mkdocs_cfpurge import state as state_module
from mkdocs_cfpurge.build.manifest import Manifest
from mkdocs_cfpurge.errors import CfPurgeError, WriteFailed
from mkdocs_cfpurge.state import Pending, StateStore

SITE = "https://docs.example.com/"
REQUESTS: list[dict[str, Any]] = [
    {"files": [f"{SITE}a/", f"{SITE}a/index.html"]},
    {"files": [{"url": f"{SITE}b/", "headers": {"CF-Device-Type": "mobile"}}]},
    {"prefixes": ["docs.example.com/guide/"]},
]


def manifest(**files: str) -> Manifest:
    return Manifest(site_url=SITE, files=dict(files))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "manifest.json"


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# --- the lock ------------------------------------------------------------------------------------


def test_a_second_store_stops_with_a_clear_message_while_the_first_holds_the_lock(
    path: Path,
) -> None:
    with StateStore(path, SITE):
        with pytest.raises(CfPurgeError) as caught, StateStore(path, SITE, lock_timeout=0.2):
            pytest.fail("the second store got the lock")  # pragma: no cover
        message = str(caught.value)
        assert "another mkdocs-cfpurge run holds the lock" in message
        assert str(path.with_name("manifest.json.lock")) in message
        assert "let it finish, then run again" in message
        assert caught.value.exit_code == 1
    with StateStore(path, SITE, lock_timeout=0.2):  # released on exit
        pass


def test_a_waiting_store_gets_the_lock_once_the_holder_lets_go(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = threading.Event()
    real_time = time  # the module state.py uses, before it is replaced

    def sleep(seconds: float) -> None:
        waiting.set()  # the second store found the lock taken and is polling
        real_time.sleep(seconds)

    monkeypatch.setattr(
        state_module, "time", SimpleNamespace(monotonic=real_time.monotonic, sleep=sleep)
    )
    order: list[str] = []
    failures: list[BaseException] = []

    def second_run() -> None:
        try:
            with StateStore(path, SITE, lock_timeout=30):
                order.append("second has the lock")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    with StateStore(path, SITE):
        thread = threading.Thread(target=second_run)
        thread.start()
        assert waiting.wait(10)
        order.append("first lets go")
    thread.join(10)
    assert not thread.is_alive() and failures == []
    assert order == ["first lets go", "second has the lock"]


HOLDER = """
import sys
from pathlib import Path
from mkdocs_cfpurge.state import StateStore
with StateStore(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_lock_held_by_another_process_is_respected_and_freed_when_it_dies(path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), SITE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(CfPurgeError, match="another mkdocs-cfpurge run holds the lock"),
            StateStore(path, SITE, lock_timeout=0.2),
        ):
            pass  # pragma: no cover
        holder.kill()  # no cleanup runs: the kernel releases the flock
        holder.wait(10)
        with StateStore(path, SITE, lock_timeout=5):
            pass
    finally:
        if holder.poll() is None:  # pragma: no cover
            holder.kill()
            holder.wait(10)


def test_the_lock_file_lives_beside_the_manifest(path: Path) -> None:
    with StateStore(path, SITE) as store:
        assert store.lock_path == path.with_name("manifest.json.lock")
        assert store.pending_path == path.with_name("pending.json")
        assert store.lock_path.exists()


# --- pending.json --------------------------------------------------------------------------------


def test_pending_round_trips_requests_and_the_manifest_to_commit(path: Path) -> None:
    next_manifest = manifest(**{"index.html": "1" * 64, "a/index.html": "2" * 64})
    with StateStore(path, SITE) as store:
        assert store.load_pending() == Pending()
        assert store.load_pending().is_empty
        store.save_pending(Pending(REQUESTS, next_manifest))
        loaded = store.load_pending()

    assert loaded.requests == REQUESTS
    assert loaded.next_manifest == next_manifest
    assert not loaded.is_empty
    data = json.loads(path.with_name("pending.json").read_bytes())
    assert (data["version"], data["site_url"]) == (1, SITE)
    # No temp file from the atomic write is left behind.
    assert files_in(path.parent) == {"pending.json", "manifest.json.lock"}


def test_pending_without_a_manifest_to_commit(path: Path) -> None:
    with StateStore(path, SITE) as store:
        store.save_pending(Pending(REQUESTS[:1], None))
        assert store.load_pending() == Pending(REQUESTS[:1], None)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"version": 1, "site_url": "https://docs.example.com/", "requ', "is corrupt"),
        (b"[1, 2]", "is invalid"),
        (
            json.dumps({"version": 9, "site_url": SITE, "requests": []}).encode(),
            "unknown version 9",
        ),
        (
            json.dumps({"version": 1, "site_url": "https://other.org/", "requests": []}).encode(),
            "made for site_url 'https://other.org/'",
        ),
        (
            json.dumps(
                {"version": 1, "site_url": SITE, "requests": [{"files": ["x"], "tags": ["y"]}]}
            ).encode(),
            "mixes purge types",
        ),
    ],
)
def test_a_bad_pending_file_is_reported_and_left_as_it_is(
    path: Path, content: bytes, problem: str
) -> None:
    pending = path.with_name("pending.json")
    pending.parent.mkdir(parents=True)
    pending.write_bytes(content)
    with StateStore(path, SITE) as store, pytest.raises(CfPurgeError) as caught:
        store.load_pending()
    assert problem in str(caught.value)
    assert str(pending) in str(caught.value)
    assert pending.read_bytes() == content


# --- commit --------------------------------------------------------------------------------------


def test_commit_writes_the_manifest_then_forgets_what_was_pending(path: Path) -> None:
    new = manifest(**{"index.html": "3" * 64})
    with StateStore(path, SITE) as store:
        store.save_pending(Pending(REQUESTS, new))
        store.commit(new)
        assert store.load_manifest() == new
        assert store.load_pending().is_empty
    assert path.read_bytes() == new.to_json()
    assert files_in(path.parent) == {"manifest.json", "manifest.json.lock"}


def test_commit_without_a_manifest_keeps_the_old_one(path: Path) -> None:
    old = manifest(**{"index.html": "4" * 64})
    old.save(path)
    with StateStore(path, SITE) as store:
        store.save_pending(Pending(REQUESTS, None))
        store.commit(None)
    assert path.read_bytes() == old.to_json()
    assert not path.with_name("pending.json").exists()


def test_a_commit_that_fails_part_way_leaves_the_old_manifest_whole(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = manifest(**{"index.html": "5" * 64})
    old.save(path)
    new = manifest(**{"index.html": "6" * 64, "b.html": "7" * 64})
    with StateStore(path, SITE) as store:
        store.save_pending(Pending(REQUESTS, new))
        pending_bytes = store.pending_path.read_bytes()

        def crash(src: Any, dst: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", crash)
        with pytest.raises(WriteFailed, match="disk full"):
            store.commit(new)
        monkeypatch.undo()

        # Old manifest byte for byte, and what is owed still on disk for the next run.
        assert path.read_bytes() == old.to_json()
        assert store.pending_path.read_bytes() == pending_bytes
        assert store.load_pending() == Pending(REQUESTS, new)
    assert files_in(path.parent) == {"manifest.json", "pending.json", "manifest.json.lock"}


def test_temp_files_left_by_a_killed_write_are_removed_by_the_next_lock_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "manifest.json"
    path.parent.mkdir()
    leftovers = [path.parent / ".manifest.json.k1ll3d.tmp", path.parent / ".pending.json.x9.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    keep = path.parent / "notes.tmp"
    keep.write_text("not ours")
    with StateStore(path, SITE):
        assert not any(leftover.exists() for leftover in leftovers)
    assert keep.exists()
