"""Site configs: valid ones load; bad ones name the key and what was expected."""

from pathlib import Path

import pytest

from scraper.errors import ConfigError
from scraper.sites import load_site, site_for_url, site_from_dict

REPO = Path(__file__).resolve().parent.parent


def test_demo_site_config_loads():
    site = load_site(REPO / "seeds" / "sites" / "demo.toml")
    assert site.name == "demo"
    assert site.engine == "discuz"
    assert site.utc_offset == "+08:00"
    assert site.boards == (1, 2)
    assert "本文由老秘网推荐," in site.noise.phrases
    assert len(site.noise.text_ads) == 3


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"name": "Bad Name!", "base_url": "https://bbs.example.cn/"}, "name"),
        ({"name": "x", "base_url": "ftp://bbs.example.cn/"}, "base_url"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "utc_offset": "8"}, "utc_offset"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "engine": "vbulletin"}, "engine"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "boards": ["2"]}, "boards"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"delay_s": -1}}, "politeness.delay_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"delay_s": True}}, "politeness.delay_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "noise": {"phrase": []}}, "noise.phrase"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"dealy_s": 5}}, "politeness.dealy_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "noise": {"phrases": "x"}}, "noise.phrases"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"every_s": 1}}, "schedule.every_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "colour": "blue"}, "colour"),
        # A broken IPv6 literal and a port past 65535: urlsplit and .port raise ValueError on them.
        ({"name": "x", "base_url": "http://[::1/"}, "base_url"),
        ({"name": "x", "base_url": "http://127.0.0.1:99999/"}, "base_url"),
        # TOML has inf and nan: a delay of inf hung the crawl after its first request.
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"delay_s": float("inf")}},
         "politeness.delay_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"every_s": float("nan")}},
         "schedule.every_s"),
        # Python counts true as 1: board 'True' and one try were taken.
        ({"name": "x", "base_url": "https://bbs.example.cn/", "boards": [True]}, "boards"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"max_tries": True}},
         "politeness.max_tries"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"max_crawl_delay_s": -5}},
         "politeness.max_crawl_delay_s"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"max_crawl_delay_s": float("inf")}},
         "politeness.max_crawl_delay_s"),
        # It goes into every request's User-Agent: a line break there failed every request.
        ({"name": "x", "base_url": "https://bbs.example.cn/", "contact_url": "https://a.cn/\nX: y"}, "contact_url"),
        ({"name": "x", "base_url": "https://bbs.example.cn/", "contact_url": "me"}, "contact_url"),
        # A header holds ASCII alone: this one failed every request of the crawl with a traceback.
        ({"name": "x", "base_url": "https://bbs.example.cn/", "contact_url": "https://例子.中国/联系我们"}, "contact_url"),
        # An integer past a float's range raised OverflowError.
        ({"name": "x", "base_url": "https://bbs.example.cn/", "politeness": {"delay_s": 10**400}}, "politeness.delay_s"),
    ],
)
def test_bad_configs_name_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        site_from_dict(data)
    assert key in str(info.value)


def test_unknown_encoding_is_refused():
    with pytest.raises(ConfigError, match="encoding"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "encoding": "klingon"})


def test_invalid_toml_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site(bad)


def test_site_for_url_uses_the_forum_folder():
    site = site_for_url("https://www.example.cn/bbs/thread-12-1-1.html")
    assert site.base_url == "https://www.example.cn/bbs/"
    assert site.name == "www-example-cn"


def test_a_contact_may_be_a_page_or_a_mailto_url():
    for contact in ("https://example.org/archive-project", "mailto:archivist@example.org"):
        site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "contact_url": contact})
        assert site.contact_url == contact


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "x"\nbase_url = "http://h\xff\xfe/"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_site(latin)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/forum-1-1.html", "ftp://bbs.example.cn/"])
def test_site_for_a_broken_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="not an http"):
        site_for_url(url)
