"""Class 8 of issue 13, the disk's half: a file that cannot be written is a one-line error naming
it (exit 1), and nothing is lost.

A full disk is met for real through RLIMIT_FSIZE (the kernel refuses the write with EFBIG, as it
refuses one with ENOSPC on a full disk), and as ENOSPC itself from the writer's fsync. Before the
purge, nothing is sent; after it, what was sent stays owed in pending.json and the next run
completes the deploy.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mkdocs_cfpurge.localcf import LocalCloudflare
from tests.helpers import TOKEN, ZONE_ID, run_main, subprocess_env, write_files

SITE_URL = "https://docs.example.com/"


@pytest.fixture
def deployed(tmp_path: Path, cf_env: None) -> tuple[Path, Path, list[str]]:
    """A site whose v1 is the last deploy (its manifest recorded) and whose v2 is built."""
    site, manifest = tmp_path / "site", tmp_path / "state" / "manifest.json"
    pages = {f"p{i}/index.html": f"<p>{i} v1</p>" for i in range(40)}
    write_files(site, pages)
    args = ["--site-url", SITE_URL, "--manifest", str(manifest)]
    command = ["manifest", str(site), "--site-url", SITE_URL, "--out", str(manifest)]
    subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", *command], capture_output=True, check=True
    )
    write_files(site, {path: text.replace("v1", "v2") for path, text in pages.items()})
    return site, manifest, args


def _limit_file_size() -> None:
    # In the child before exec: files may not grow past 300 bytes, and a write past that fails
    # with EFBIG instead of killing the process (SIGXFSZ ignored, which survives exec).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_a_real_refused_write_before_the_purge_sends_nothing(
    deployed: tuple[Path, Path, list[str]], cf: LocalCloudflare
) -> None:
    site, manifest, args = deployed
    before = manifest.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs_cfpurge", "purge", str(site), *args],
        env=subprocess_env(
            CLOUDFLARE_API_TOKEN=TOKEN, CLOUDFLARE_ZONE_ID=ZONE_ID, CLOUDFLARE_API_BASE=cf.api_base
        ),
        preexec_fn=_limit_file_size,
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = result.stderr
    assert result.returncode == 1, err
    pending = manifest.with_name("pending.json")
    assert (
        f"error: cannot write {str(pending)!r}: File too large; the file was left as it was" in err
    )
    assert "Traceback" not in err and err.strip().count("\n") <= 3
    assert [r for r in cf.requests if r["method"] == "POST"] == []
    assert manifest.read_bytes() == before and not pending.exists()
    assert [p.name for p in manifest.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_full_disk_at_the_commit_keeps_what_was_sent_owed(
    deployed: tuple[Path, Path, list[str]],
    cf: LocalCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site, manifest, args = deployed
    before = manifest.read_bytes()
    real_replace = os.replace

    def full_disk(src: str, dst: str) -> None:
        if os.path.basename(dst) == "manifest.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", full_disk)
        code, _, err = run_main(["purge", str(site), *args], capsys)
    assert code == 1, err
    assert f"cannot write {str(manifest)!r}: No space left on device" in err
    sent = {item for record in cf.purges for item in record.items}
    assert len(sent) == 80  # the purge itself went out
    assert manifest.read_bytes() == before
    owed = json.loads(manifest.with_name("pending.json").read_bytes())["requests"]
    assert {url for body in owed for url in body["files"]} == sent  # still owed: nothing lost

    code, _, err = run_main(["purge", str(site), *args], capsys)  # room again
    assert code == 0, err
    assert not manifest.with_name("pending.json").exists()
    assert (
        json.loads(manifest.read_bytes())["files"]["p0/index.html"]
        != json.loads(before)["files"]["p0/index.html"]
    )


def test_a_lock_file_that_cannot_be_created_is_named(
    deployed: tuple[Path, Path, list[str]],
    cf: LocalCloudflare,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    site, _, _ = deployed
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    args = ["--site-url", SITE_URL, "--manifest", str(blocker / "manifest.json")]
    code, _, err = run_main(["purge", str(site), *args], capsys)
    assert code == 1
    assert f"error: cannot write {str(blocker / 'manifest.json.lock')!r}: " in err
    assert cf.requests == []
