"""The verify budget: per site in its config, per command with `run --verify-budget`, spent exactly."""

import time

import pytest
from click.testing import CliRunner

from scraper import config
from scraper.cli import main
from scraper.errors import ConfigError
from scraper.sites import site_from_dict
from tests.test_daemon_status import demo_config


def run_once(db, config_path, *extra):
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(config_path), "--delay", "0",
                                       "--allow-private", "--once", *extra])
    assert result.exit_code == 0, result.output


def with_budget(config_path, budget):
    text = config_path.read_text(encoding="utf-8").replace("[schedule]\n",
                                                           f"[schedule]\nverify_budget_requests = {budget}\n")
    config_path.write_text(text, encoding="utf-8")
    return config_path


@pytest.mark.parametrize(("site_budget", "flag", "expected"), [(3, (), 3), (3, ("--verify-budget", "5"), 5),
                                                                 (3, ("--verify-budget", "0"), 0)])
def test_an_unchanged_forum_costs_its_boards_and_guide_plus_exactly_the_verify_budget(demo_forum, tmp_path, site_budget,
                                                                             flag, expected):
    db = tmp_path / "a.db"
    config_path = with_budget(demo_config(tmp_path, demo_forum.base_url), site_budget)
    run_once(db, config_path, "--verify-budget", "0")
    time.sleep(1.05)  # times are stored to the second: pages read in the same second count as just verified
    mark = len(demo_forum.requests)
    run_once(db, config_path, *flag)
    paths = [r.path for r in demo_forum.requests[mark:]]
    boards = [p for p in paths if p.startswith("/forum-")]
    guide = [p for p in paths if "mod=guide" in p]
    verified = [p for p in paths if p.startswith("/thread-")]
    assert len(boards) == len(demo_forum.forum.boards) and len(guide) == 1
    assert len(verified) == expected and len(set(verified)) == expected
    assert len(paths) == len(boards) + len(guide) + expected, paths


def test_the_default_budget_lives_in_config():
    site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/"})
    assert site.verify_budget_requests == config.VERIFY_BUDGET_REQUESTS


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_bad_budget_names_the_key(bad):
    with pytest.raises(ConfigError, match="schedule.verify_budget_requests.*integer >= 0"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_budget_requests": bad}})


def test_an_unknown_schedule_key_is_refused():
    with pytest.raises(ConfigError, match="schedule.verify_budget"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_budget": 3}})


def test_a_negative_budget_on_the_command_line_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "a.db"), "--site",
                                       "http://127.0.0.1:9/forum-1-1.html", "--once", "--verify-budget", "-1"])
    assert result.exit_code != 0 and "--verify-budget" in result.output
