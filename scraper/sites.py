"""Site configs (TOML): load, validate, and turn into the settings the crawler uses.

Errors name the bad key and say what is expected, so an operator can fix a config
without reading the code.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from scraper import config
from scraper.clean import NoiseRules
from scraper.errors import BadURL, ConfigError
from scraper.net import split_url

_OFFSET = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KNOWN_ENGINES = ("discuz",)


@dataclass(frozen=True)
class Politeness:
    delay_s: float = config.DELAY_S
    max_tries: int = config.MAX_TRIES_PER_RUN
    max_crawl_delay_s: float = config.MAX_CRAWL_DELAY_S  # a longer robots.txt gap: the site is not crawled


@dataclass(frozen=True)
class Site:
    name: str
    engine: str
    base_url: str
    utc_offset: str = config.DEFAULT_UTC_OFFSET
    encoding: str = config.DEFAULT_ENCODING
    boards: tuple[int, ...] = ()
    guide: bool = False  # discovery also reads the site-wide new-threads guide
    contact_url: str | None = None
    politeness: Politeness = field(default_factory=Politeness)
    noise: NoiseRules = field(default_factory=NoiseRules)
    every_s: float = config.SCHEDULE_EVERY_S
    verify_budget_requests: int = config.VERIFY_BUDGET_REQUESTS
    verify_min_age_s: float = config.VERIFY_MIN_AGE_S
    verify_cycle_s: float = config.VERIFY_CYCLE_S
    cookies_file: Path | None = None  # a member's cookies.txt: pages as that member sees them
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def archived_config(self) -> dict[str, Any]:
        """The config as the archive keeps it (and Datasette publishes it): without where the
        member's cookies are, which is the operator's business."""
        return {key: value for key, value in self.raw.items() if key != "cookies_file"}


def _expect(cond: bool, key: str, what: str, got: Any) -> None:
    if not cond:
        raise ConfigError(f"site config: {key} must be {what}, got {got!r}")


def _refuse_unknown(table: dict[str, Any], section: str, known: tuple[str, ...], source: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key {section}.{unknown[0]}; known: {', '.join(known)}")


def _is_number(value: Any, minimum: float) -> bool:
    """A finite TOML integer or float (not a boolean, which Python counts as an int) >= minimum
    (TOML has inf and nan: a delay of inf would hang a crawl)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        number = float(value)  # an integer past a float's range raises: no number of seconds either
    except OverflowError:
        return False
    return math.isfinite(number) and number >= minimum


def _is_count(value: Any) -> bool:
    """A TOML integer (not a boolean, which Python counts as an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


# White space and control characters: no URL holds one, and one in a header breaks every request.
_NOT_IN_A_URL = re.compile(r"[\x00-\x20\x7f]")


def url_parts(url: Any, schemes: tuple[str, ...] = ("http", "https")) -> SplitResult | None:
    """`url` split, when it is an absolute URL of one of `schemes` (with a host and a port in
    range, for http(s)); None for anything else, a broken IPv6 literal or a port past 65535
    included (which the fetcher's split_url refuses)."""
    if not isinstance(url, str) or _NOT_IN_A_URL.search(url):
        return None
    try:
        parts = split_url(url)
    except BadURL:
        return None
    if parts.scheme not in schemes or (parts.scheme in ("http", "https") and not parts.hostname):
        return None
    return parts


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    _expect(isinstance(value, list) and all(isinstance(v, str) for v in value), key, "a list of strings", value)
    return tuple(value)


def site_from_dict(data: dict[str, Any], *, source: str = "site config", base_dir: Path | None = None) -> Site:
    """Validate a parsed config mapping and build a Site. base_dir: where a relative
    cookies_file is (the config file's folder; default the working directory)."""
    known = {"name", "engine", "base_url", "utc_offset", "encoding", "boards", "guide", "contact_url",
             "politeness", "noise", "schedule", "cookies_file"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    name = data.get("name")
    _expect(isinstance(name, str) and bool(_NAME.match(name or "")), "name",
            "a short lowercase name of letters, digits, '-' or '_'", name)
    engine = data.get("engine", "discuz")
    _expect(engine in KNOWN_ENGINES, "engine", f"one of {KNOWN_ENGINES}", engine)
    base_url = data.get("base_url")
    _expect(url_parts(base_url) is not None, "base_url", "an http(s) URL such as 'https://bbs.example.cn/'",
            base_url)
    if not base_url.endswith("/"):
        base_url += "/"
    utc_offset = data.get("utc_offset", config.DEFAULT_UTC_OFFSET)
    _expect(isinstance(utc_offset, str) and bool(_OFFSET.match(utc_offset)), "utc_offset",
            "a UTC offset like '+08:00'", utc_offset)
    encoding = data.get("encoding", config.DEFAULT_ENCODING)
    _expect(isinstance(encoding, str), "encoding", "an encoding name such as 'gbk' or 'utf-8'", encoding)
    try:
        "".encode(encoding)
    except LookupError:
        raise ConfigError(f"{source}: encoding {encoding!r} is not an encoding Python knows") from None
    boards = data.get("boards", [])
    _expect(isinstance(boards, list) and all(_is_count(b) and b > 0 for b in boards), "boards",
            "a list of board ids (fid numbers)", boards)
    guide = data.get("guide", False)
    _expect(isinstance(guide, bool), "guide", "true or false (read the site's new-threads guide)", guide)
    contact = data.get("contact_url")
    # A header holds ASCII alone: a host in Chinese is given in its IDNA form (xn--...), a path
    # percent-encoded.
    _expect(contact is None or (url_parts(contact, ("http", "https", "mailto")) is not None and contact.isascii()),
            "contact_url", "an http(s) or mailto: URL in ASCII (it goes into the User-Agent)", contact)

    pol = data.get("politeness", {})
    _expect(isinstance(pol, dict), "politeness", "a table", pol)
    _refuse_unknown(pol, "politeness", ("delay_s", "max_tries", "max_crawl_delay_s"), source)
    delay_s = pol.get("delay_s", config.DELAY_S)
    _expect(_is_number(delay_s, 0), "politeness.delay_s", "seconds >= 0", delay_s)
    max_tries = pol.get("max_tries", config.MAX_TRIES_PER_RUN)
    _expect(_is_count(max_tries) and 1 <= max_tries <= config.MAX_TRIES_PER_RUN, "politeness.max_tries",
            f"an integer from 1 to {config.MAX_TRIES_PER_RUN}", max_tries)
    max_crawl_delay_s = pol.get("max_crawl_delay_s", config.MAX_CRAWL_DELAY_S)
    _expect(_is_number(max_crawl_delay_s, 0), "politeness.max_crawl_delay_s",
            "seconds >= 0 (the longest robots.txt Crawl-delay this site is crawled at)", max_crawl_delay_s)

    noise = data.get("noise", {})
    _expect(isinstance(noise, dict), "noise", "a table", noise)
    _refuse_unknown(noise, "noise", ("phrases", "learned", "text_ads"), source)
    rules = NoiseRules(
        phrases=_str_list(noise.get("phrases", []), "noise.phrases"),
        learned=_str_list(noise.get("learned", []), "noise.learned"),
        text_ads=_str_list(noise.get("text_ads", []), "noise.text_ads"),
    )
    schedule = data.get("schedule", {})
    _expect(isinstance(schedule, dict), "schedule", "a table", schedule)
    _refuse_unknown(schedule, "schedule", ("every_s", "verify_budget_requests", "verify_min_age_s", "verify_cycle_s"),
                    source)
    every_s = schedule.get("every_s", config.SCHEDULE_EVERY_S)
    _expect(_is_number(every_s, 60), "schedule.every_s", "seconds >= 60", every_s)
    verify_budget = schedule.get("verify_budget_requests", config.VERIFY_BUDGET_REQUESTS)
    _expect(_is_count(verify_budget) and verify_budget >= 0,
            "schedule.verify_budget_requests", "an integer >= 0 (requests per refresh run)", verify_budget)
    verify_min_age_s = schedule.get("verify_min_age_s", config.VERIFY_MIN_AGE_S)
    _expect(_is_number(verify_min_age_s, 0), "schedule.verify_min_age_s",
            "seconds >= 0 (the verify pass re-reads pages last fetched at least this long ago)", verify_min_age_s)
    verify_cycle_s = schedule.get("verify_cycle_s", config.VERIFY_CYCLE_S)
    _expect(_is_number(verify_cycle_s, 60), "schedule.verify_cycle_s", "seconds >= 60 (the verify pass re-reads each page about once this long)",
            verify_cycle_s)
    cookies_file = data.get("cookies_file")
    _expect(cookies_file is None or (isinstance(cookies_file, str) and bool(cookies_file.strip())), "cookies_file",
            "the path of a cookies.txt file (Netscape format, as browsers' export extensions write it)", cookies_file)
    cookies_path = None
    if cookies_file is not None:
        cookies_path = ((base_dir or Path.cwd()) / Path(cookies_file).expanduser()).resolve()
        if not cookies_path.is_file():
            raise ConfigError(f"{source}: cookies_file {str(cookies_path)!r} is not a file")
        # Kept absolute: a site rebuilt from its raw config (the daemon's jobs) finds it too.
        data = dict(data, cookies_file=str(cookies_path))
    return Site(
        name=name, engine=engine, base_url=base_url, utc_offset=utc_offset, encoding=encoding,
        boards=tuple(boards), guide=guide, contact_url=contact,
        politeness=Politeness(delay_s=float(delay_s), max_tries=max_tries,
                              max_crawl_delay_s=float(max_crawl_delay_s)),
        noise=rules, every_s=float(every_s), verify_budget_requests=verify_budget,
        verify_min_age_s=float(verify_min_age_s), verify_cycle_s=float(verify_cycle_s),
        cookies_file=cookies_path, raw=data,
    )


def load_site(path: str | Path) -> Site:
    """Read and validate one site config file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"site config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"site config {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"site config {path} is not UTF-8 text (TOML is): {exc}") from None
    return site_from_dict(data, source=str(path), base_dir=path.parent)


def site_for_url(url: str, *, name: str | None = None, engine: str = "discuz") -> Site:
    """A default site for a URL given on the command line without a config."""
    parts = url_parts(url)
    if parts is None:
        raise ConfigError(f"{url!r} is not an http(s) URL")
    host = parts.hostname
    default_name = re.sub(r"[^a-z0-9_-]+", "-", (host + (f"-{parts.port}" if parts.port else "")).lower()).strip("-")
    # Discuz often lives in a folder (https://example.cn/bbs/): the base is the URL's folder.
    base = f"{parts.scheme}://{parts.netloc}{_folder(parts.path)}"
    return site_from_dict({"name": name or default_name[:63], "engine": engine, "base_url": base})


def _folder(path: str) -> str:
    """The folder part of a URL path, ending in '/'."""
    return path[: path.rfind("/") + 1] or "/"


def check_same_forum(stored_base_url: str | None, site: Site) -> None:
    """Refuse to file `site` under the archive's site of the same name when that one is
    another forum on the same host: a forum in a folder beside it (example.cn/bbs/ and
    example.cn/club/, which `crawl URL` names alike). Posts are keyed by the forum's post
    ids, so the second forum's posts would be filed as edits of the first's.

    Allowed: the same folder, or one inside the other (URL forms of one forum differ in
    depth); another scheme or port; another host (a forum that moved, or a site pointed at
    another address on purpose).
    """
    if not stored_base_url or not site.base_url:
        return
    stored, given = urlsplit(stored_base_url), urlsplit(site.base_url)
    if (stored.hostname or "").lower() != (given.hostname or "").lower():
        return
    stored_folder, given_folder = _folder(stored.path), _folder(given.path)
    if stored_folder.startswith(given_folder) or given_folder.startswith(stored_folder):
        return
    raise ConfigError(
        f"the archive's site {site.name!r} is the forum at {stored_base_url}; {site.base_url} is another "
        f"folder of that host, so another forum, whose post ids would collide with the stored ones. Give it a "
        f"name of its own (crawl --site NAME, or `name` in its config)"
    )


def check_site_in_archive(archive: Any, site: Site) -> None:
    """check_same_forum against the site the archive (a storage Archive) holds under site.name."""
    known = archive.get_site(site.name)
    check_same_forum(known["base_url"] if known else None, site)
