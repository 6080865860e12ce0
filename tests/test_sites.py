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
