"""The seed thread as structured data: `python -m scraper.demo.seeddata` writes
seeds/demo/seed_thread.json from seeds/000_742c7f89ba496aaa.txt.

Each post keeps its lines exactly as the seed shows them, with the jammer runs split off
into `lead` (a run at the line's start) and `trail` (a run at its end), so the demo forum
can put every run back where it stood, wrapped the way Discuz wraps it. A line that is
nothing but jammer has an empty `text` and the whole run in `lead`. The watermark stays
inside the text, as it is inline in the real page; the ads at the top of posts 2-4 move to
`ad`, since the page showed them in an ad slot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scraper.clean import strip_jammer_line
from scraper.demo import DEMO_DATA_DIR, SEEDS_DIR
from scraper.engines.discuz_text import split_text_page

SEED_TEXT_PATH = SEEDS_DIR / "000_742c7f89ba496aaa.txt"
SEED_JSON_PATH = DEMO_DATA_DIR / "seed_thread.json"
SEED_TID = 1
SEED_ADS = ("公文写作百法例讲", "老秘网虚拟稿费", "专业写文章")  # the ad slots of posts 2, 3 and 4
FIRST_UID = 1001  # uids are not in the text; authors get them in order of appearance
# A character that is never jammer: appended or prepended, it stops strip_jammer_line from
# matching at that end, so the runs at each end can be told apart.
_FENCE = "\u4e00"
_BLANK = " \t\xa0\u3000"


def pid_for(tid: int, floor: int) -> int:
    """The demo forum's pid rule for its loaded threads: tid * 100 + floor."""
    return tid * 100 + floor


def split_jammer(line: str) -> dict[str, str]:
    """{'lead': run at the start, 'text': the rest, 'trail': run at the end} of one line."""
    without_lead, _ = strip_jammer_line(line + _FENCE)
    lead_len = len(line) + 1 - len(without_lead)
    rest = line[lead_len:]
    without_trail, _ = strip_jammer_line(_FENCE + rest)
    text = without_trail[1:]
    return {"lead": line[:lead_len], "text": text, "trail": rest[len(text):]}


def _trim_blank_lines(lines: list[str]) -> list[str]:
    # The text rendering puts a line of U+00A0 after each header and before the next one.
    start, end = 0, len(lines)
    while start < end and not lines[start].strip(_BLANK):
        start += 1
    while end > start and not lines[end - 1].strip(_BLANK):
        end -= 1
    return lines[start:end]


def seed_thread(text: str, *, tid: int = SEED_TID, ads: tuple[str, ...] = SEED_ADS) -> dict:
    """The seed page's thread as a JSON-ready dict: title, tid and its posts."""
    rendering = split_text_page(text)
    uids: dict[str, int] = {}
    posts = []
    for floor, raw in enumerate(rendering.posts, start=1):
        lines = _trim_blank_lines(raw.lines)
        ad = None
        if lines and lines[0].strip(_BLANK) in ads:
            ad = lines.pop(0).strip(_BLANK)
        uid = uids.setdefault(raw.author, FIRST_UID + len(uids))
        posts.append({
            "pid": pid_for(tid, floor),
            "floor": floor,
            "author": raw.author,
            "uid": uid,
            "posted_at_raw": raw.posted_at_raw,
            "op_mark": raw.op_mark,
            "ad": ad,
            "lines": [split_jammer(line) for line in lines],
        })
    return {"source": SEED_TEXT_PATH.name, "tid": tid, "title": rendering.title, "posts": posts}


def dumps(data: dict) -> str:
    """The JSON text as committed: UTF-8, indented, a trailing newline."""
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write seed_thread.json from the seed text (paths may be given: SEED_TXT OUT_JSON)."""
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else SEED_TEXT_PATH
    target = Path(args[1]) if len(args) > 1 else SEED_JSON_PATH
    data = seed_thread(source.read_text(encoding="utf-8"))
    target.write_text(dumps(data), encoding="utf-8")
    print(f"wrote {target} ({len(data['posts'])} posts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
