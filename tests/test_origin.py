"""localcf's origins: a folder served like a static host, and publications that come late."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mkdocs_cfpurge.localcf.origin import BranchOrigin, FolderPublisher, OriginServer
from tests.helpers import bare_repository, git, write_files

SITE = {
    "index.html": "<h1>Home</h1>",
    "guide/index.html": "<h1>Guide v1</h1>",
    "assets/site.css": "body {}",
    "404.html": "<h1>Not here</h1>",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write_files(tmp_path / "site", SITE)
    return tmp_path / "site"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def get(http: httpx.Client, url: str) -> tuple[int, str]:
    response = http.get(url)
    assert response.headers["cache-control"] == "max-age=600"  # as GitHub Pages sends
    return response.status_code, response.text


def test_a_folder_is_served_like_a_static_host(site: Path, http: httpx.Client) -> None:
    with OriginServer(site) as origin:
        assert get(http, origin.url) == (200, "<h1>Home</h1>")
        assert get(http, origin.url + "guide/") == (200, "<h1>Guide v1</h1>")
        assert get(http, origin.url + "guide/index.html?v=2") == (200, "<h1>Guide v1</h1>")
        assert get(http, origin.url + "nope/") == (404, "<h1>Not here</h1>")
        redirect = http.get(origin.url + "guide?x=1")
        head = http.head(origin.url + "assets/site.css")

    assert (redirect.status_code, redirect.headers["location"]) == (301, "/guide/?x=1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(SITE["assets/site.css"]))
    assert head.headers["content-type"] == "text/css"


def test_switch_serves_the_other_folder_from_the_next_request(
    tmp_path: Path, site: Path, http: httpx.Client
) -> None:
    other = tmp_path / "other"
    write_files(other, {"index.html": "<h1>Home v2</h1>"})
    with OriginServer() as origin:
        assert get(http, origin.url) == (404, "404 Not Found\n")  # nothing published yet
        origin.switch(site)
        assert get(http, origin.url) == (200, "<h1>Home</h1>")
        origin.switch(other)
        assert get(http, origin.url) == (200, "<h1>Home v2</h1>")
        assert get(http, origin.url + "guide/") == (404, "404 Not Found\n")  # no mix of builds


def test_folder_publisher_serves_a_copy_and_publishes_the_next_one_late(
    tmp_path: Path, site: Path, http: httpx.Client
) -> None:
    with FolderPublisher(site, tmp_path / "exports", delay=0.2, paused=True) as origin:
        [(_, first)] = origin.publications  # what the folder held at start, served at once
        write_files(site, {"guide/index.html": "<h1>Guide v2</h1>"})
        assert get(http, origin.url + "guide/")[1] == "<h1>Guide v1</h1>"  # a copy, not live

        version = origin.publish()
        assert version != first
        # Paused: the upload is noticed but not served.
        assert get(http, origin.url + "guide/")[1] == "<h1>Guide v1</h1>"
        origin.paused = False
        origin.wait_published(version)
        assert get(http, origin.url + "guide/")[1] == "<h1>Guide v2</h1>"
        assert origin.published == version
        assert [v for _, v in origin.publications] == [first, version]


def test_branch_origin_publishes_each_push_of_its_branch(
    tmp_path: Path, http: httpx.Client
) -> None:
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    bare_repository(bare, "gh-pages")
    git(tmp_path, "init", "-q", "-b", "gh-pages", str(work))
    write_files(work, {"index.html": "v1"})
    git(work, "add", "-A")
    git(work, "commit", "-qm", "v1")
    git(work, "push", "-q", str(bare), "gh-pages")
    v1 = git(work, "rev-parse", "HEAD")

    with BranchOrigin(bare, tmp_path / "exports", delay=0.1) as origin:
        assert origin.published == v1  # what the branch held at start: served at once
        assert get(http, origin.url) == (200, "v1")
        origin.paused = True
        write_files(work, {"index.html": "v2"})
        git(work, "commit", "-qam", "v2")
        git(work, "push", "-q", str(bare), "gh-pages")
        v2 = git(work, "rev-parse", "HEAD")
        assert get(http, origin.url) == (200, "v1")
        origin.paused = False
        published = origin.wait_published(v2)
        assert get(http, origin.url) == (200, "v2")

    assert origin.published_at(v1) < published
    with pytest.raises(KeyError):
        origin.published_at("0" * 40)
