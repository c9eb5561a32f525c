"""Built files to the exact URLs Cloudflare caches: one table, both use_directory_urls values."""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mkdocs.structure.files import File

from mkdocs_cfpurge.errors import ConfigError
from mkdocs_cfpurge.plan.changes import Change, Reason, Status
from mkdocs_cfpurge.plan.planner import build_plan
from mkdocs_cfpurge.plan.urls import SiteUrl, UrlMapper, parse_host

SITES = ["https://example.com/", "https://example.com/docs/"]

# (source file in docs/, use_directory_urls, built file, URL paths relative to site_url).
# The order of the URL paths is the mapper's: MkDocs' own link first.
URL_TABLE = [
    ("index.md", True, "index.html", ["", "index.html"]),
    ("index.md", False, "index.html", ["", "index.html"]),
    ("foo.md", True, "foo/index.html", ["foo/", "foo/index.html"]),
    ("foo.md", False, "foo.html", ["foo.html"]),
    ("foo.html", True, "foo.html", ["foo.html"]),
    ("foo.html", False, "foo.html", ["foo.html"]),
    ("a/b/index.md", True, "a/b/index.html", ["a/b/", "a/b/index.html"]),
    ("a/b/index.md", False, "a/b/index.html", ["a/b/", "a/b/index.html"]),
    ("a/b.md", True, "a/b/index.html", ["a/b/", "a/b/index.html"]),
    ("a/b.md", False, "a/b.html", ["a/b.html"]),
    ("a/README.md", True, "a/index.html", ["a/", "a/index.html"]),
    ("assets/site.css", True, "assets/site.css", ["assets/site.css"]),
    ("assets/site.css", False, "assets/site.css", ["assets/site.css"]),
    ("my page.md", True, "my page/index.html", ["my%20page/", "my%20page/index.html"]),
    ("my page.md", False, "my page.html", ["my%20page.html"]),
    (
        "café/naïve.md",
        True,
        "café/naïve/index.html",
        ["caf%C3%A9/na%C3%AFve/", "caf%C3%A9/na%C3%AFve/index.html"],
    ),
    ("café/naïve.md", False, "café/naïve.html", ["caf%C3%A9/na%C3%AFve.html"]),
    ("café/naïve.html", True, "café/naïve.html", ["caf%C3%A9/na%C3%AFve.html"]),
    (
        "日本語/ガイド.md",
        True,
        "日本語/ガイド/index.html",
        [
            "%E6%97%A5%E6%9C%AC%E8%AA%9E/%E3%82%AC%E3%82%A4%E3%83%89/",
            "%E6%97%A5%E6%9C%AC%E8%AA%9E/%E3%82%AC%E3%82%A4%E3%83%89/index.html",
        ],
    ),
    (
        "日本語/ガイド.md",
        False,
        "日本語/ガイド.html",
        ["%E6%97%A5%E6%9C%AC%E8%AA%9E/%E3%82%AC%E3%82%A4%E3%83%89.html"],
    ),
    ("c#.md", True, "c#/index.html", ["c%23/", "c%23/index.html"]),
    ("c#.md", False, "c#.html", ["c%23.html"]),
    ("what?.md", True, "what?/index.html", ["what%3F/", "what%3F/index.html"]),
    ("what?.md", False, "what?.html", ["what%3F.html"]),
    ("100%.md", True, "100%/index.html", ["100%25/", "100%25/index.html"]),
    ("100%.md", False, "100%.html", ["100%25.html"]),
    ("a%20b.html", True, "a%20b.html", ["a%2520b.html"]),
    # Reserved characters: MkDocs links `c%2B%2B/`, a typed or raw link asks for `c++/`; Cloudflare
    # keeps them as two cache keys.
    (
        "c++.md",
        True,
        "c++/index.html",
        ["c%2B%2B/", "c%2B%2B/index.html", "c++/", "c++/index.html"],
    ),
    ("c++.md", False, "c++.html", ["c%2B%2B.html", "c++.html"]),
    ("a+b/c d.md", False, "a+b/c d.html", ["a%2Bb/c%20d.html", "a+b/c%20d.html"]),
    (
        "it's (v1).md",
        False,
        "it's (v1).html",
        ["it%27s%20%28v1%29.html", "it's%20(v1).html"],
    ),
    ("t~u_v-w.x.md", False, "t~u_v-w.x.html", ["t~u_v-w.x.html"]),
]


@pytest.mark.parametrize("site_url", SITES)
@pytest.mark.parametrize(("src", "use_directory_urls", "built", "expected"), URL_TABLE)
def test_url_table(
    site_url: str, src: str, use_directory_urls: bool, built: str, expected: list[str]
) -> None:
    # The table's built file is the one MkDocs writes for this source and setting.
    page = File(src, "/docs", "/site", use_directory_urls)
    assert page.dest_uri == built

    mapper = UrlMapper.create(SiteUrl.parse(site_url))
    urls = mapper.urls(built)
    assert urls == [site_url + path for path in expected]
    # MkDocs' own link to the page (nav, sitemap, search index) is one of them.
    assert urljoin(site_url, page.url) in urls


@pytest.mark.parametrize("site_url", SITES)
def test_hosts_and_schemes_each_get_every_variant(site_url: str) -> None:
    site = SiteUrl.parse(site_url)
    mapper = UrlMapper.create(site, ("www.example.com", "example.com"), ("https", "http"))
    assert mapper.hosts == ("example.com", "www.example.com")  # site's host first, no duplicate
    path = site.path
    assert mapper.urls("guide/index.html") == [
        f"https://example.com{path}guide/",
        f"https://example.com{path}guide/index.html",
        f"https://www.example.com{path}guide/",
        f"https://www.example.com{path}guide/index.html",
        f"http://example.com{path}guide/",
        f"http://example.com{path}guide/index.html",
        f"http://www.example.com{path}guide/",
        f"http://www.example.com{path}guide/index.html",
    ]
    assert mapper.prefixes("guide") == [f"example.com{path}guide/", f"www.example.com{path}guide/"]
    assert mapper.prefixes("") == [f"example.com{path}", f"www.example.com{path}"]
    # A folder's slashless URL (a redirect to the folder) on every scheme and host.
    assert mapper.folder_urls("c++") == [
        f"https://example.com{path}c%2B%2B",
        f"https://example.com{path}c++",
        f"https://www.example.com{path}c%2B%2B",
        f"https://www.example.com{path}c++",
        f"http://example.com{path}c%2B%2B",
        f"http://example.com{path}c++",
        f"http://www.example.com{path}c%2B%2B",
        f"http://www.example.com{path}c++",
    ]


def test_default_scheme_is_site_urls() -> None:
    mapper = UrlMapper.create(SiteUrl.parse("http://example.com/"))
    assert mapper.urls("a.html") == ["http://example.com/a.html"]


def test_cache_key_headers_become_url_and_headers_entries() -> None:
    mapper = UrlMapper.create(
        SiteUrl.parse("https://example.com/docs/"),
        cache_key_headers=(
            {"CF-IPCountry": "US", "CF-Device-Type": "mobile"},
            {"Accept-Language": "fr"},
        ),
    )
    # Normalised: each map's items sorted, so equal maps give equal plans.
    assert mapper.cache_key_headers == (
        (("CF-Device-Type", "mobile"), ("CF-IPCountry", "US")),
        (("Accept-Language", "fr"),),
    )
    plan = build_plan([Change("a/index.html", Status.MODIFIED, Reason.HASH_DIFFERS)], mapper)
    urls = ["https://example.com/docs/a/", "https://example.com/docs/a/index.html"]
    assert plan.requests == [
        {"files": urls},
        {
            "files": [
                {"url": url, "headers": {"CF-Device-Type": "mobile", "CF-IPCountry": "US"}}
                for url in urls
            ]
            + [{"url": url, "headers": {"Accept-Language": "fr"}} for url in urls]
        },
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com", "https://example.com/"),
        ("https://Example.COM/docs", "https://example.com/docs/"),
        ("https://example.com/Docs/", "https://example.com/Docs/"),  # paths are case-sensitive
        ("  https://example.com/docs/  ", "https://example.com/docs/"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:80/", "http://example.com/"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/"),
        ("http://[::1]:8000/docs/", "http://[::1]:8000/docs/"),
        ("https://example.com/my docs/", "https://example.com/my%20docs/"),
        ("https://example.com/my%20docs/", "https://example.com/my%20docs/"),
        ("https://example.com/café/", "https://example.com/caf%C3%A9/"),
    ],
)
def test_site_url_normalised(value: str, expected: str) -> None:
    site = SiteUrl.parse(value)
    assert str(site) == expected
    # A URL of the site is a valid URL: it splits back into the same parts.
    url = UrlMapper.create(site).urls("a b.html")[0]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == (
        site.scheme,
        site.host,
        "",
        "",
    )
    assert url.isascii() and " " not in url


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is not set"),
        ("   ", "is not set"),
        ("example.com/docs/", "must start with https://"),
        ("//example.com/", "must start with https://"),
        ("ftp://example.com/", "must start with https://"),
        ("https://example.com/?lang=en", "query string"),
        ("https://example.com/docs/?", "query string"),
        ("https://example.com/#top", "fragment"),
        ("https://example.com/docs/#", "fragment"),
        ("https:///docs/", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:port/", "invalid port"),
        ("https://example.com:99999/", "invalid port"),
    ],
)
def test_site_url_errors_name_site_url(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SiteUrl.parse(value)
    assert caught.value.option == "site_url"
    assert "'site_url'" in str(caught.value)
    assert problem in str(caught.value)


def test_site_url_error_names_the_option_given() -> None:
    with pytest.raises(ConfigError, match="'--site-url'"):
        SiteUrl.parse("example.com", option="--site-url")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("www.Example.com", "www.example.com"), (" docs.example.com ", "docs.example.com")],
)
def test_parse_host(value: str, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com",
        "http://example.com",
        "example.com/docs",
        "example.com/",
        "",
        "a b.com",
        "example.com?x=1",
        "example.com#top",
        "user@example.com",
    ],
)
def test_parse_host_errors_name_hosts(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_host(value)
    assert caught.value.option == "hosts"
    assert "'hosts'" in str(caught.value)


# --- properties ---------------------------------------------------------------------------------

# Any file name a POSIX file system holds and a URL can carry: no '/', no NUL or other control
# character (the manifest refuses those), no lone surrogate (not UTF-8), not '.' or '..'.
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=10,
).filter(lambda name: name not in (".", ".."))
paths = st.lists(names, min_size=1, max_size=4).map("/".join)


def _decoded_paths(urls: list[str]) -> set[str]:
    return {unquote(urlsplit(url).path, errors="strict") for url in urls}


@settings(max_examples=300, deadline=None)
@given(site_url=st.sampled_from(SITES), path=paths)
def test_urls_decode_back_to_the_file(site_url: str, path: str) -> None:
    site = SiteUrl.parse(site_url)
    urls = UrlMapper.create(site).urls(path)
    assert len(urls) == len(set(urls))
    for url in urls:
        assert url.isascii() and url.isprintable() and " " not in url
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == (
            "https",
            "example.com",
            "",
            "",
        )
    # Each URL names this file: the file itself, or its folder when it is an index.html.
    expected = {site.path + path}
    if path == "index.html" or path.endswith("/index.html"):
        expected.add(site.path + path[: -len("index.html")])
    assert _decoded_paths(urls) == expected


@settings(max_examples=200, deadline=None)
@given(site_url=st.sampled_from(SITES), files=st.sets(paths, min_size=2, max_size=8))
def test_distinct_files_never_share_a_url(site_url: str, files: set[str]) -> None:
    mapper = UrlMapper.create(SiteUrl.parse(site_url), ("www.example.com",), ("https", "http"))
    owner: dict[str, str] = {}
    for path in sorted(files):
        for url in mapper.urls(path):
            assert owner.setdefault(url, path) == path, f"{url} serves {owner[url]} and {path}"
