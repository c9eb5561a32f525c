"""The manifest: hashes of every built file, saved atomically, read back strictly."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mkdocs_cfpurge.build.manifest import (
    ALGORITHM,
    CHUNK,
    FORMAT_VERSION,
    Manifest,
    build_manifest,
    load_manifest,
)
from mkdocs_cfpurge.errors import CfPurgeError, WriteFailed
from tests.helpers import write_files

SITE_URL = "https://example.com/docs/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_hashes_are_sha256_of_the_bytes(tmp_path: Path) -> None:
    files: dict[str, bytes] = {
        "index.html": b"<h1>Home</h1>\n",
        "empty.txt": b"",
        "img/logo.png": bytes(range(256)) * 4,
        # Larger than the read chunk, and not a multiple of it: the streamed digest must
        # still equal the digest of the whole.
        "big/data.bin": os.urandom(CHUNK * 2 + 12345),
        "café/naïve.html": "ça marche".encode(),
    }
    write_files(tmp_path, files)
    manifest = build_manifest(tmp_path, SITE_URL)
    assert manifest.site_url == SITE_URL
    assert manifest.files == {rel: sha256(data) for rel, data in sorted(files.items())}


SITE_FILES = {
    "index.html",
    "assets/x.map",
    "assets/keep.map",
    "assets/keep.map.txt",
    "drafts/a.html",
    "drafts/keep.html",
    "sub/drafts/b.html",
    "cache/c.html",
    "deep/cache/d.html",
}


@pytest.mark.parametrize(
    ("patterns", "left_out"),
    [
        ([], set()),
        (["*.map"], {"assets/x.map", "assets/keep.map"}),
        (["*.map", "!keep.map"], {"assets/x.map"}),
        # A directory pattern without a leading slash matches the folder at any depth.
        (["cache/"], {"cache/c.html", "deep/cache/d.html"}),
        (["drafts/"], {"drafts/a.html", "drafts/keep.html", "sub/drafts/b.html"}),
        # Anchored: only the top-level folder.
        (["/drafts/"], {"drafts/a.html", "drafts/keep.html"}),
        (["drafts/*", "!drafts/keep.html"], {"drafts/a.html"}),
        # As in git, a file cannot be re-included when its folder is excluded.
        (
            ["drafts/", "!drafts/keep.html"],
            {"drafts/a.html", "drafts/keep.html", "sub/drafts/b.html"},
        ),
        (["**/x.map", "/index.html"], {"assets/x.map", "index.html"}),
    ],
)
def test_exclude_patterns_are_gitignore_style(
    tmp_path: Path, patterns: list[str], left_out: set[str]
) -> None:
    write_files(tmp_path, {rel: rel for rel in SITE_FILES})
    manifest = build_manifest(tmp_path, SITE_URL, exclude=patterns)
    assert set(manifest.files) == SITE_FILES - left_out


def test_excluded_folder_is_not_walked(tmp_path: Path) -> None:
    # An excluded folder may hold anything, even a symlink loop or a name no URL can carry.
    write_files(tmp_path, {"index.html": "x", "private/a.txt": "y"})
    (tmp_path / "private" / "loop").symlink_to("..")
    (tmp_path / "private" / "bad\nname.txt").write_text("z")
    manifest = build_manifest(tmp_path, SITE_URL, exclude=["private/"])
    assert list(manifest.files) == ["index.html"]


def test_symlinks_are_followed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    outside = tmp_path / "outside"
    write_files(site, {"index.html": "home"})
    write_files(outside, {"real.html": "real page", "shared/x.css": "css", "shared/y/z.js": "js"})
    (site / "page.html").symlink_to(outside / "real.html")
    (site / "shared").symlink_to(outside / "shared", target_is_directory=True)
    (site / "dangling.html").symlink_to(tmp_path / "missing.html")  # serves nothing: skipped
    manifest = build_manifest(site, SITE_URL)
    assert manifest.files == {
        "index.html": sha256(b"home"),
        "page.html": sha256(b"real page"),
        "shared/x.css": sha256(b"css"),
        "shared/y/z.js": sha256(b"js"),
    }


def test_same_folder_linked_twice_is_not_a_loop(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_files(site, {"common/a.css": "a"})
    (site / "v1").symlink_to("common")
    (site / "v2").symlink_to("common")
    assert set(build_manifest(site, SITE_URL).files) == {"common/a.css", "v1/a.css", "v2/a.css"}


def test_symlink_to_an_ancestor_is_a_loop(tmp_path: Path) -> None:
    write_files(tmp_path, {"index.html": "x", "a/b/page.html": "y"})
    (tmp_path / "a" / "b" / "up").symlink_to("../..")
    with pytest.raises(CfPurgeError, match=r"symlink loop.*'a/b/up'"):
        build_manifest(tmp_path, SITE_URL)


def test_loop_through_two_symlinks(tmp_path: Path) -> None:
    # a/to-b -> b and b/to-a -> a: neither points at its own ancestor, yet the walk never ends.
    write_files(tmp_path, {"a/x.html": "x", "b/y.html": "y"})
    (tmp_path / "a" / "to-b").symlink_to("../b")
    (tmp_path / "b" / "to-a").symlink_to("../a")
    with pytest.raises(CfPurgeError, match=r"symlink loop in the site folder: 'a/to-b/to-a'"):
        build_manifest(tmp_path, SITE_URL)


def test_non_utf8_file_name_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"index.html": "x"})
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.html"), "wb") as handle:
        handle.write(b"latin-1 name")
    with pytest.raises(CfPurgeError, match="not valid UTF-8") as caught:
        build_manifest(tmp_path, SITE_URL)
    assert "'caf\\xe9.html'" in str(caught.value)  # the bad byte shown, escaped once
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    "name", ["new\nline.html", "carriage\r.html", "tab\t.html", "esc\x1b.html"]
)
def test_control_character_in_name_is_refused(tmp_path: Path, name: str) -> None:
    write_files(tmp_path, {"index.html": "x", f"sub/{name}": "y"})
    with pytest.raises(CfPurgeError, match="control character") as caught:
        build_manifest(tmp_path, SITE_URL)
    assert repr(f"sub/{name}") in str(caught.value)


def test_missing_site_folder(tmp_path: Path) -> None:
    missing = tmp_path / "site"
    with pytest.raises(CfPurgeError, match="does not exist") as caught:
        build_manifest(missing, SITE_URL)
    assert str(missing) in str(caught.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CfPurgeError, match="not a folder"):
        build_manifest(tmp_path / "file", SITE_URL)


def test_parallel_hashing_matches_sequential(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i:03}.html": os.urandom(i * 37 % 5000) for i in range(200)}
    write_files(tmp_path, files)
    sequential = build_manifest(tmp_path, SITE_URL, workers=1)
    parallel = build_manifest(tmp_path, SITE_URL, workers=4)
    assert len(sequential.files) == 200
    assert parallel.files == sequential.files
    assert list(parallel.files) == list(sequential.files)
    assert parallel.to_json() == sequential.to_json()
    assert sequential.files == {rel: sha256(data) for rel, data in files.items()}


# --- the saved form -----------------------------------------------------------------------------


def _manifest() -> Manifest:
    return Manifest(
        site_url=SITE_URL, files={"z.html": "1" * 64, "a/index.html": "2" * 64, "é.css": "3" * 64}
    )


def test_json_form(tmp_path: Path) -> None:
    raw = _manifest().to_json()
    pairs = json.loads(raw, object_pairs_hook=list)
    assert [key for key, _ in pairs] == ["algorithm", "files", "site_url", "version"]
    data = json.loads(raw)
    assert data["version"] == FORMAT_VERSION == 1
    assert data["algorithm"] == ALGORITHM == "sha256"
    assert data["site_url"] == SITE_URL
    assert list(data["files"]) == ["a/index.html", "z.html", "é.css"]  # sorted
    assert raw.endswith(b"\n")
    assert "é.css".encode() in raw  # readable in diffs, not \u escapes


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "manifest.json"
    _manifest().save(path)
    (tmp_path / "state" / "other.txt").write_text("kept")
    changed = Manifest(site_url=SITE_URL, files={"b.html": "4" * 64})
    changed.save(path)
    assert sorted(os.listdir(path.parent)) == ["manifest.json", "other.txt"]  # no temp file left
    loaded = load_manifest(path, SITE_URL)
    assert loaded == changed


def test_failed_save_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "manifest.json"
    _manifest().save(path)
    before = path.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)  # the os.replace atomic.py calls
    with pytest.raises(WriteFailed, match="No space") as failed:
        Manifest(site_url=SITE_URL, files={}).save(path)
    assert str(path) in str(failed.value) and failed.value.exit_code == 1
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_load_missing_is_none(tmp_path: Path) -> None:
    assert load_manifest(tmp_path / "nope.json") is None
    assert load_manifest(tmp_path / "nope.json", SITE_URL) is None


VALID = _manifest().to_json()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        VALID[: len(VALID) // 2],  # truncated by a crash or a full disk
        b"\xff\xfe garbage",
        b"[]",
        b'"a string"',
        b'{"version": 1, "algorithm": "sha256", "site_url": "https://example.com/docs/"}',
        b'{"version": 1, "algorithm": "sha256", "site_url": "https://example.com/docs/",'
        b' "files": ["a.html"]}',
        b'{"version": 1, "algorithm": "sha256", "site_url": "https://example.com/docs/",'
        b' "files": {"a.html": 1}}',
        b'{"version": "x", "algorithm": "sha256", "site_url": "https://example.com/docs/",'
        b' "files": {}}',
        b'{"version": 2, "algorithm": "sha256", "site_url": "https://example.com/docs/",'
        b' "files": {}}',
        b'{"version": 1, "algorithm": "md5", "site_url": "https://example.com/docs/", "files": {}}',
    ],
)
def test_corrupt_manifest_is_an_error_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(CfPurgeError) as caught:
        load_manifest(path, SITE_URL)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content


def test_manifest_of_another_site_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    _manifest().save(path)
    before = path.read_bytes()
    with pytest.raises(CfPurgeError, match="was made for site_url") as caught:
        load_manifest(path, "https://other.example.com/")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    # Without a site_url to check, it loads.
    assert load_manifest(path) == _manifest()


def test_unreadable_manifest_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(CfPurgeError, match="cannot be read") as caught:
        load_manifest(tmp_path / "manifest.json")
    assert str(tmp_path / "manifest.json") in str(caught.value)


# --- issue 13, class 6: what is read back is validated path by path, hash by hash ---------------


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"../x.html": "a" * 64}, "not a path inside the site"),
        ({"a/./x.html": "a" * 64}, "not a path inside the site"),
        ({"/x.html": "a" * 64}, "not a path inside the site"),
        ({"a//x.html": "a" * 64}, "not a path inside the site"),
        ({"x\r.html": "a" * 64}, "control character"),
        ({"x.html": "sha256 of it"}, "is not a hash"),
        ({"x.html": 5}, "is not a hash"),
        ({"x.html": "A" * 64}, "is not a hash"),
    ],
)
def test_a_manifest_read_back_is_checked_path_by_path(
    files: dict[str, object], problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(
        json.dumps({"version": 1, "algorithm": "sha256", "site_url": SITE_URL, "files": files})
    )
    with pytest.raises(CfPurgeError, match=problem) as caught:
        load_manifest(path, SITE_URL)
    assert str(path) in str(caught.value) and "Delete it to start over" in str(caught.value)


def test_a_deployed_marker_owing_a_path_outside_the_site_is_no_marker() -> None:
    from mkdocs_cfpurge.build.marker import Marker, served_digest

    good = Marker(Manifest(SITE_URL, {"a.html": "b" * 64}), "c" * 64, ("a.html",))
    assert Marker.parse(good.to_json()) == good
    bad = json.loads(good.to_json())
    bad["owed"] = ["../../etc/passwd"]
    with pytest.raises(ValueError, match="not a path inside the site"):
        Marker.parse(json.dumps(bad).encode())
    assert served_digest(json.dumps(bad).encode()) is None
