"""Built files to the exact URLs Cloudflare caches them under.

A `files` purge matches one cache key (scheme + host + path + query), so every variant a visitor
can request must be listed: `guide/index.html` is also served as `guide/`, the top `index.html` as
the base URL itself, each host and scheme is its own key, and a name with reserved characters
(`c++.html`) is requested both as MkDocs links it (`c%2B%2B.html`) and raw (`c++.html`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from mkdocs_cfpurge.errors import ConfigError

# Characters a browser leaves as they are in a URL path (WHATWG path percent-encode set, minus the
# backslash that special schemes read as a slash). '%' is not here: a literal '%' in a file name
# must become '%25' so that decoding the URL gives the file name back.
_PATH_SAFE = "/!$&'()*+,;=:@-._~[]^|"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# One label of a DNS host name as a cache key holds it: letters, digits and hyphens (no hyphen at
# either end), 63 at most. Underscores are let through: DNS allows them and Cloudflare proxies
# such names.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


def dns_name(value: str) -> str:
    """A host name as Cloudflare's cache keys hold it: lower case, and an internationalised name
    in its IDNA ASCII form (`bücher.example` → `xn--bcher-kva.example`); an IP address as it is.

    ValueError says what is wrong with anything else (spaces, empty labels, bad characters).
    """
    name = value.strip()
    if name.startswith("[") and name.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv6 address") from None
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    if not name.isascii():
        import idna  # httpx's own dependency; loaded only for such a name

        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(
                f"{value!r} is not a valid internationalised host name ({exc})"
            ) from None
    name = name.lower()
    if not name or len(name) > 253:
        raise ValueError(f"{value!r} is not a host name (1 to 253 characters)")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"{value!r} is not a host name: {label!r} is not a DNS label (letters, digits "
                "and inner hyphens, 1 to 63 of them)"
            )
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a host name (nor an IPv4 address)")
    if any(label.startswith("xn--") for label in labels):
        unicode_name(name)  # an ACE label must decode
    return name


def unicode_name(host: str) -> str:
    """The Unicode form of an IDNA host name (`xn--bcher-kva.example` → `bücher.example`); the
    name itself when it has no IDNA label. ValueError for a label that does not decode."""
    if "xn--" not in host:
        return host
    import idna

    try:
        return str(idna.decode(host))
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"{host!r} holds an invalid IDNA label ({exc})") from None


def dns_host(value: str) -> str:
    """`dns_name`, with an optional `:port` (1 to 65535) kept as it is."""
    text = value.strip()
    name, port = text, ""
    if text.startswith("["):
        name, _, rest = text.partition("]")
        name += "]"
        if rest:
            port = rest.removeprefix(":") if rest.startswith(":") else "x"
    elif ":" in text:
        name, _, port = text.rpartition(":")
    if port and (not _PORT.fullmatch(port) or not 0 < int(port) < 65536):
        raise ValueError(f"{value!r} has an invalid port")
    host = dns_name(name)
    return f"{host}:{port}" if port else host


def ancestors(path: str) -> Iterator[str]:
    """The folders above a site path, nearest first (`a/b/c.html` → `a/b`, `a`)."""
    # rpartition, not posixpath.dirname: the same for manifest paths (no '//', no leading '/'),
    # several times faster.
    folder = path.rpartition("/")[0]
    while folder:
        yield folder
        folder = folder.rpartition("/")[0]


def encode_path(path: str) -> str:
    """Percent-encode a file path (UTF-8) the way a browser requests it when typed or linked raw."""
    return quote(path, safe=_PATH_SAFE, encoding="utf-8", errors="strict")


def encode_link_path(path: str) -> str:
    """Percent-encode a file path the way MkDocs writes it in its links, sitemap and search index
    (`urllib.parse.quote`: only RFC 3986 unreserved characters stay as they are, so `c++/` is
    linked as `c%2B%2B/`)."""
    return quote(path, safe="/", encoding="utf-8", errors="strict")


def path_encodings(path: str) -> list[str]:
    """Every encoding of a path a visitor may request: MkDocs' links first, then the raw form.

    Cloudflare does not decode reserved characters, so `/c%2B%2B/` and `/c++/` are two cache keys.
    """
    return list(dict.fromkeys((encode_link_path(path), encode_path(path))))


@dataclass(frozen=True)
class SiteUrl:
    """A validated site_url: scheme, lower-case host (and port) and a path ending in '/'."""

    scheme: str
    host: str
    path: str

    @classmethod
    def parse(cls, value: str, option: str = "site_url") -> SiteUrl:
        if not value or not value.strip():
            raise ConfigError(
                option,
                "is not set; set site_url in mkdocs.yml (or pass --site-url) to the "
                "public address of the site, e.g. https://docs.example.com/",
            )
        if any(ord(c) < 32 or c == "\x7f" for c in value.strip()):
            # urlsplit would drop tabs and newlines silently, turning "do\tcs" into "docs".
            raise ConfigError(option, f"{value!r} holds a control character")
        try:
            parts = urlsplit(value.strip())
        except ValueError as exc:  # a bracketed host that is no IPv6 address
            raise ConfigError(option, f"{value!r} is not a valid URL ({exc})") from None
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(option, f"{value!r} has an invalid port ({exc})") from None
        if port == 0:
            raise ConfigError(option, f"{value!r} has an invalid port (0)")
        if parts.scheme not in ("http", "https"):
            raise ConfigError(option, f"{value!r} must start with https:// (or http://)")
        if not parts.hostname:
            raise ConfigError(option, f"{value!r} has no host name")
        if parts.query or value.rstrip().endswith("?"):
            raise ConfigError(option, f"{value!r} must not carry a query string")
        if parts.fragment or "#" in value:
            raise ConfigError(option, f"{value!r} must not carry a fragment")
        if parts.username or parts.password:
            raise ConfigError(option, f"{value!r} must not carry credentials")
        name = parts.hostname
        if ":" in name:  # an IPv6 address keeps its brackets in a URL
            name = f"[{name}]"
        try:
            host = dns_name(name)
        except ValueError as exc:
            raise ConfigError(option, f"{value!r}: {exc}") from None
        if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
            host = f"{host}:{port}"
        # Spaces and non-ASCII characters in the path are percent-encoded as a browser does;
        # escapes the user already wrote ('%20') are kept as they are.
        path = quote(parts.path or "/", safe=_PATH_SAFE + "%", encoding="utf-8")
        if not path.endswith("/"):
            path += "/"
        return cls(parts.scheme, host, path)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"


def parse_host(value: str, option: str = "hosts") -> str:
    """A bare host name as Cloudflare wants it: no scheme, no path, lower case, IDNA ASCII (an
    optional :port kept)."""
    host = value.strip().lower()
    if not host or any(c in host for c in "/\\?#@") or any(c.isspace() for c in host):
        raise ConfigError(
            option, f"{value!r} is not a bare host name (write docs.example.com, no scheme or path)"
        )
    try:
        return dns_host(host)
    except ValueError as exc:
        raise ConfigError(option, str(exc)) from None


@dataclass(frozen=True)
class UrlMapper:
    """Maps site-relative file paths (POSIX, as in the manifest) to their public URLs."""

    site: SiteUrl
    hosts: tuple[str, ...]
    schemes: tuple[str, ...]
    cache_key_headers: tuple[tuple[tuple[str, str], ...], ...] = ()

    @classmethod
    def create(
        cls,
        site: SiteUrl,
        extra_hosts: tuple[str, ...] = (),
        schemes: tuple[str, ...] | None = None,
        cache_key_headers: tuple[dict[str, str], ...] = (),
    ) -> UrlMapper:
        hosts = tuple(dict.fromkeys((site.host, *extra_hosts)))
        headers = tuple(tuple(sorted(h.items())) for h in cache_key_headers)
        return cls(site, hosts, schemes or (site.scheme,), headers)

    def paths(self, file_path: str) -> list[str]:
        """The URL paths (under every host) that serve this file, most visited first."""
        base = self.site.path
        if file_path == "index.html":
            return [base, base + "index.html"]
        paths: list[str] = []
        for encoded in path_encodings(file_path):
            if file_path.endswith("/index.html"):
                paths += [base + encoded[: -len("index.html")], base + encoded]
            else:
                paths.append(base + encoded)
        return paths

    def urls(self, file_path: str) -> list[str]:
        """Every full URL of the file: each scheme, each host, each path variant."""
        return [
            f"{scheme}://{host}{path}"
            for scheme in self.schemes
            for host in self.hosts
            for path in self.paths(file_path)
        ]

    def folder_urls(self, folder: str) -> list[str]:
        """The slashless URLs of a folder (`/guide`), which redirect to `/guide/`."""
        return [
            f"{scheme}://{host}{self.site.path}{encoded}"
            for scheme in self.schemes
            for host in self.hosts
            for encoded in path_encodings(folder)
        ]

    def file_prefixes(self, file_path: str) -> list[str]:
        """Cloudflare prefixes at a file's own path (`host/about.html`): every query-string
        variant of that one URL."""
        return [
            f"{host}{self.site.path}{encoded}"
            for host in self.hosts
            for encoded in path_encodings(file_path)
        ]

    def prefixes(self, folder: str) -> list[str]:
        """Cloudflare prefixes (host + path, no scheme, ending in '/') for a site folder."""
        if not folder:
            return [f"{host}{self.site.path}" for host in self.hosts]
        return [
            f"{host}{self.site.path}{encoded}/"
            for host in self.hosts
            for encoded in path_encodings(folder)
        ]
