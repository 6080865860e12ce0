"""Our Discuz! X thread-page extraction, written with BeautifulSoup 4 over lxml.

The issue measures our extraction against "the same extraction written with BeautifulSoup
(what forum-dl uses)"; forum-dl parses with `BeautifulSoup(markup, "lxml")`. This module is
that contestant: a port of scraper/engines/discuz.py's parse_thread, and of the parts of
scraper/clean.py it runs, that returns the same ThreadPage, every field of every post.
benchmarks/bench_extract.py checks it equal (==) to ours on every page before timing either,
so the ratio it prints compares the same work done two ways.

Shared with the engine: the selectors and marker texts (data), and the helpers that never
touch a tree, which a developer porting the extraction would reuse as they are, at the same
cost on both sides: URL and time parsing, floor assignment, jammer and phrase removal on
strings (clean._clean_plain_html among them), the text layout's clean-up, the nh3 sanitiser
of an HTML string, media_refs on the sanitised HTML. Every lookup, removal, walk and attribute
read is BeautifulSoup's: select, select_one, css.iselect, find_all, get_text, decompose, copy.

Every step ours runs on a thread page runs here too, in the same order, including the lookups
that find nothing on the benchmark pages (quotes, attachments, signatures, status markers,
furniture), and the same fast path for a body of text and <br> (most posts), read from the
body's children without a copy. Like ours, the other paths clean a copy of the body, so the
page stays as parsed.

Not ported: clean.parse_html's nesting guard (a query for elements nested deeper than 32),
a defence against lexbor's cost on pathological nesting that libxml2 does not need (it builds
100,000 nested <div>s in under a second). Where the two parsers build different trees, the
extractions can differ: BeautifulSoup collapses a string of only white space to a single
line feed or space, so a post body with a blank line between two tags differs from ours in
content_html (the demo forum's thread 1 has one), and lexbor and libxml2 repair broken markup
differently (a stray </br>, a NUL, misnested tags). None of it occurs on the benchmark pages
or the test fixtures.

    page = parse_thread(html, ParseContext(url=url))
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timezone

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString
from bs4.formatter import HTMLFormatter

from scraper import clean
from scraper.clean import (
    IMAGE_SOURCE_ATTRIBUTES,
    NOISE_AD_SLOTS,
    NOISE_HIDDEN_ELEMENTS,
    NOISE_JAMMER_ELEMENTS,
    NOISE_JAMMER_TEXT,
    NOISE_LEARNED_PHRASES,
    NOISE_SCRIPTS,
    NOISE_SITE_PHRASES,
    NOISE_STYLES,
    NoiseRules,
    absolute_url,
    add_counts,
    could_hold_jammer,
    link_url,
    merge_counts,
    normalise_whitespace,
    remove_phrases,
)
from scraper.engines.base import (
    Attachment,
    ClassifiedInfo,
    ParseContext,
    Poll,
    Post,
    PostStatus,
    Quote,
    SpecialThread,
    ThreadPage,
)
from scraper.engines.discuz import (
    _AID_ID,
    _DIGITS,
    _FID_PARAM,
    _FINDPOST_PID,
    _FIRST_NUMBER,
    _OFTEN_ABSENT_IN_TABLE,
    _PAGES_TOTAL,
    _PID_ID,
    _POLL_IMAGE_VOTES,
    _POLL_OPTION_NUMBER,
    _POLL_ROW_VOTES,
    _RARE_IN_BODY,
    _RARE_IN_TABLE,
    BLOCKED_NOTICE_MARK,
    CREDITS_SHOWN_MARKS,
    CLASSIFIED_TITLE_ENDS,
    FURNITURE_IMAGE_PATHS,
    MARKUP_NOISE,
    POSTED_PREFIX,
    SELECTORS,
    THREAD_STARTER_MARKS,
    ascii_number,
    _is_board_alias,
    _is_web_url,
    _PostParts,
    _filled,
    _query,
    _split_attribution,
    _tid_from_href,
    _uid,
    assign_floors,
    board_ref,
    fetch_time,
    media_refs,
    parse_absolute_time,
    parse_post_time,
    player_file_of_element,
    player_file_urls,
    player_files_in_script,
    player_link_html,
    poll_record,
    printed_count,
    site_timezone,
    thread_ref,
)
from scraper.errors import ParseError

S = SELECTORS


class _PageSerialiser(HTMLFormatter):
    """bs4's HTML output written as the HTML serialisation algorithm writes it (lexbor's
    inner_html, which ours hands to nh3): attributes in page order, not sorted (nh3 keeps
    their order), text escaped as &amp; &nbsp; &lt; &gt; except in the raw-text elements,
    and <br> for <br/>."""

    def attributes(self, tag: Tag):
        return list(tag.attrs.items())


# The elements whose text the HTML serialisation writes raw (noscript too, but only with
# scripting on: lexbor parses with it off).
_RAW_TEXT_ELEMENTS = frozenset("style script xmp iframe noembed noframes plaintext".split())
SERIALISER = _PageSerialiser(entity_substitution=clean._escape_text, void_element_close_prefix=None,
                             cdata_containing_tags=set(_RAW_TEXT_ELEMENTS))


# --- nodes ------------------------------------------------------------------------------------
# lexbor's node kinds in bs4's terms: a text node is a NavigableString; comments, and the
# processing instructions and CDATA that lexbor reads as comments, are PreformattedStrings.
def _is_text(node: PageElement) -> bool:
    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


def _is_blank(node: PageElement) -> bool:
    return isinstance(node, PreformattedString) or (_is_text(node) and not node.strip())


def _text(node: PageElement | None) -> str:
    if node is None or isinstance(node, PreformattedString):
        return ""
    return normalise_whitespace(node.get_text() if isinstance(node, Tag) else str(node))


def _classes(node: Tag) -> list[str]:
    return node.get("class") or []


def _count(node: Tag | None) -> int | None:
    """A printed count: '25031', '4万' with the exact number in @title, or nothing."""
    if node is None:
        return None
    title = ascii_number((node.get("title") or "").strip())
    if title is not None:
        return title
    return printed_count(_text(node))


def _matches_or_holds(node: Tag, selector: str) -> bool:
    # What ours asks with lexbor's css_matches, which is true of an element that matches or
    # holds a match.
    return node.css.match(selector) or node.select_one(selector) is not None


def _inside(node: PageElement, root: Tag, ancestor_ids: set[int] | frozenset[int]) -> bool:
    """True when an ancestor of `node` below `root` is one of `ancestor_ids` (by id())."""
    parent = node.parent
    while parent is not None and parent is not root:
        if id(parent) in ancestor_ids:
            return True
        parent = parent.parent
    return False


def _holders(root: Tag, selector: str) -> frozenset[int]:
    """The elements from `root` down that are or hold a match of `selector`, by id(): one
    walk of `root` answers "does this post hold any of them?" for every post."""
    holders: set[int] = set()
    for match in root.select(selector):
        node = match
        while node is not None and id(node) not in holders:  # a listed node's ancestors are listed
            holders.add(id(node))
            node = node.parent if node is not root else None
    return frozenset(holders)


def _remove_following_breaks(node: PageElement, limit: int) -> None:
    """Remove up to `limit` <br> right after `node` (white space between them does not count)."""
    sibling = node.next_sibling
    while sibling is not None and limit:
        following = sibling.next_sibling
        if isinstance(sibling, Tag) and sibling.name == "br":
            sibling.decompose()
            limit -= 1
        elif not _is_blank(sibling):
            break
        sibling = following


# --- layer 1: markup noise (clean.strip_markup_noise) -------------------------------------------
def _remove_outermost(node: Tag, kinds: list[tuple[str, list[Tag]]]) -> dict[str, int]:
    """Decompose the outermost of the listed elements below `node`, counted under the first
    kind that lists each."""
    kind_of: dict[int, str] = {}
    elements: dict[int, Tag] = {}
    for name, matches in reversed(kinds):  # the first kind listing an element wins
        for element in matches:
            kind_of[id(element)] = name
            elements[id(element)] = element
    removed: dict[str, int] = {}
    outermost = []
    for element_id, kind in kind_of.items():
        parent = elements[element_id].parent
        while parent is not None and parent is not node and id(parent) not in kind_of:
            parent = parent.parent
        if parent is node:
            removed[kind] = removed.get(kind, 0) + 1
            outermost.append(elements[element_id])
    for element in outermost:
        element.decompose()
    return removed


def strip_markup_noise(node: Tag) -> dict[str, int]:
    """Jammer elements, display:none elements, ad slots, scripts and styles below `node`."""
    kinds = [(NOISE_JAMMER_ELEMENTS, node.select(MARKUP_NOISE.jammer)),
             (NOISE_HIDDEN_ELEMENTS, node.find_all(style=clean._DISPLAY_NONE))]
    # Ads, scripts and styles are rare: one query for the three.
    rare = node.select(f"{MARKUP_NOISE.ad_slot}, script, style")
    ads = [n for n in rare if n.name not in ("script", "style")
           and any(token.startswith(MARKUP_NOISE.ad_class_prefix) for token in _classes(n))]
    kinds += [(NOISE_AD_SLOTS, ads), (NOISE_SCRIPTS, [n for n in rare if n.name == "script"]),
              (NOISE_STYLES, [n for n in rare if n.name == "style"])]
    return _remove_outermost(node, kinds)


def remove_elements(node: Tag, selectors: tuple[str, ...]) -> None:
    """Remove every element below `node` matching any of `selectors` (nested matches once)."""
    _remove_outermost(node, [("match", node.select(", ".join(selectors)))])


# --- text layout (clean.html_to_text, clean.clean_node_text) ------------------------------------
def _layout_lines(node: Tag) -> list[str]:
    """The text below `node` as raw lines: a hard break at each <br> and at newlines inside
    <pre>, a soft break (only after text) at block edges. White space is left as found."""
    lines: list[str] = []
    current: list[str] = []
    has_text = False
    stack = [(iter(node.contents), False, False)]  # (children left, inside <pre>, ends a block)
    while stack:
        children, in_pre, ends_block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if ends_block and has_text:
                lines.append("".join(current))
                current.clear()
                has_text = False
        elif isinstance(child, Tag):
            tag = child.name
            if tag in clean._NO_TEXT_TAGS:
                continue
            if tag == "br":
                lines.append("".join(current))
                current.clear()
                has_text = False
                continue
            is_block = tag in clean.BLOCK_TAGS
            if is_block and has_text:
                lines.append("".join(current))
                current.clear()
                has_text = False
            if tag == "tr" and sum(isinstance(c, Tag) and c.name not in clean._NO_TEXT_TAGS
                                   for c in child.contents) > 1:
                row = _layout_row(child)
                if row is not None:
                    lines.append(row)
                continue
            stack.append((iter(child.contents), in_pre or tag == "pre", is_block))
        elif _is_text(child):
            value = str(child)
            if in_pre:
                first, *rest = value.split("\n")
                current.append(first)
                for piece in rest:
                    lines.append("".join(current))
                    current.clear()
                    current.append(piece)
                    has_text = False
            else:
                current.append(clean._html_spaces_as_spaces(value))
            if not has_text:
                has_text = bool(value) and not value.isspace()
    if current:
        lines.append("".join(current))
    return lines


def _layout_row(row: Tag) -> str | None:
    """A table row as one raw line (clean._layout_row): each cell's own breaks marked
    CELL_LINE_BREAK, the cells as clean._row_line joins them; None when no cell holds text."""
    cells: list[str] = []
    for cell in row.contents:
        if not isinstance(cell, Tag) or cell.name in clean._NO_TEXT_TAGS:
            continue
        pieces: list[str] = []
        stack = [(iter(cell.contents), False)]  # (children left, breaks a line at its end)
        while stack:
            children, ends_block = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if ends_block:
                    pieces.append(clean.CELL_LINE_BREAK)
            elif isinstance(child, Tag):
                if child.name in clean._NO_TEXT_TAGS:
                    continue
                breaks = _breaks_line(child)
                if breaks:
                    pieces.append(clean.CELL_LINE_BREAK)
                stack.append((iter(child.contents), breaks))
            elif _is_text(child):
                pieces.append(clean._html_spaces_as_spaces(str(child).replace(clean.PREFORMATTED_LINE, "")))
        cells.append("".join(pieces))
    return clean._row_line(cells)


def html_to_text(node: Tag) -> str:
    return clean._unmark(clean._finish_text("\n".join(_layout_lines(node))))


def clean_node_text(node: Tag, noise: NoiseRules) -> tuple[str, dict[str, int]]:
    """The text of `node` laid out, then jammer runs at line edges and phrases removed."""
    return clean._clean_layout("\n".join(_layout_lines(node)), noise)


# --- layers 2-4 inside the tree -----------------------------------------------------------------
def _text_nodes(node: Tag) -> list[NavigableString]:
    return [n for n in node.descendants if _is_text(n)]


def _replace_text(text_node: NavigableString, value: str) -> None:
    if value:
        text_node.replace_with(value)
    else:
        text_node.extract()


def _breaks_line(node: PageElement | None) -> bool:
    return isinstance(node, Tag) and (node.name == "br" or node.name in clean.BLOCK_TAGS)


def _at_line_edge(text_node: NavigableString, root: Tag, *, forward: bool) -> bool:
    """True when only white space stands between the text node and a line edge (a <br>, a
    block boundary, or the root's own start or end), on the side given by `forward`."""
    node = text_node
    while True:
        sibling = node.next_sibling if forward else node.previous_sibling
        while sibling is not None and _is_blank(sibling):
            sibling = sibling.next_sibling if forward else sibling.previous_sibling
        if sibling is not None:
            return _breaks_line(sibling)
        parent = node.parent
        if parent is None or parent is root or parent.name in clean.BLOCK_TAGS:
            return True
        node = parent


def strip_jammer_nodes(node: Tag) -> int:
    """Layer 2 inside a tree: jammer runs at the line edges of text nodes, so a run that
    arrived without its wrapper element is still caught. Returns the runs removed."""
    node.smooth()  # text split around removed wrappers becomes one string again
    if not could_hold_jammer(node.get_text()):
        return 0
    removed = 0
    for text_node in _text_nodes(node):
        value = str(text_node)
        if len(value.strip()) < clean._SHORTEST_RUN_CHARS or not could_hold_jammer(value):
            continue
        at_start = _at_line_edge(text_node, node, forward=False)
        at_end = _at_line_edge(text_node, node, forward=True)
        if not (at_start or at_end):
            continue
        cleaned, n = clean._strip_edge_runs(value, at_start=at_start, at_end=at_end)
        if n:
            removed += n
            _replace_text(text_node, cleaned)
    return removed


def _remove_phrases_in_tree(node: Tag, phrases: tuple[str, ...]) -> int:
    if not any(phrases):
        return 0
    removed = 0
    for text_node in _text_nodes(node):
        cleaned, n = remove_phrases(str(text_node), phrases)
        if n:
            removed += n
            _replace_text(text_node, cleaned)
    return removed


def clean_tree_phrases(node: Tag, noise: NoiseRules) -> dict[str, int]:
    counts: dict[str, int] = {}
    add_counts(counts, NOISE_SITE_PHRASES, _remove_phrases_in_tree(node, noise.phrases))
    add_counts(counts, NOISE_LEARNED_PHRASES, _remove_phrases_in_tree(node, noise.learned))
    return counts


# --- the plain-body fast path (clean.clean_plain_body) ------------------------------------------
def plain_body(body: Tag, noise: NoiseRules) -> tuple[str, str, dict[str, int]] | None:
    """(html, text, counts) of a body whose children are text, bare <br> and jammer or hidden
    elements holding only text (most posts), read from those children without a copy or a
    walk of the tree; None for any other body (the caller takes the tree path)."""
    if body.name in clean._UNESCAPED_TEXT_PARENTS:
        return None
    lines: list[list[str]] = [[]]
    jammer = hidden = 0
    for child in body.contents:
        if type(child) is NavigableString:
            lines[-1].append(child)
        elif not isinstance(child, Tag):
            return None  # a comment
        elif child.name == "br" and not child.attrs:
            lines.append([])
        elif not all(type(c) is NavigableString for c in child.contents):
            return None
        elif child.name == "font" and "jammer" in _classes(child):
            jammer += 1
        elif clean._DISPLAY_NONE.search(child.get("style") or ""):
            hidden += 1
        else:
            return None
    values = ["".join(line) for line in lines]
    # The string helpers take the text as the serialiser writes it: escaped, <br> between lines.
    plain = clean._clean_plain_html("<br>".join(map(clean._escape_text, values)), body.name, noise)
    if plain is None:
        return None
    html, text, text_counts = plain
    counts: dict[str, int] = {}
    add_counts(counts, NOISE_HIDDEN_ELEMENTS, hidden)
    add_counts(counts, NOISE_JAMMER_ELEMENTS, jammer)
    merge_counts(counts, text_counts)
    return html, text, counts


# --- sanitising (clean.sanitize_node) -----------------------------------------------------------
def _resolve_urls(node: Tag, base_url: str) -> None:
    """Make the links and images below `node` absolute, in place; an image takes its real
    file from its lazy-load attribute. URLs that cannot be resolved are removed."""
    for element in node.select("img, a"):
        if element.name == "img":
            source = next((element[a] for a in IMAGE_SOURCE_ATTRIBUTES if element.get(a)), None)
            url = absolute_url(source, base_url)
            if url:
                element["src"] = url
            elif "src" in element.attrs:
                del element["src"]
            continue
        href = element.get("href")
        if href is None:
            continue
        url = link_url(href, base_url)
        if url:
            element["href"] = url
        else:
            del element["href"]


def sanitize(node: Tag, base_url: str) -> str:
    """The content of `node` as HTML safe to render (`node` itself is left unchanged)."""
    resolved = node
    if node.select_one("img, a") is not None:  # only links and images need a copy to rewrite
        resolved = copy.copy(node)
        _resolve_urls(resolved, base_url)
    html = resolved.decode_contents(formatter=SERIALISER).lstrip(clean._ASCII_WHITESPACE)
    # Escaped text and bare <br> are already what the sanitiser would give.
    if clean._parser_keeps(html) and clean._is_escaped_text_and_breaks(resolved.name, html):
        return html
    if clean._starts_body(html):
        return clean._CLEANER.clean(html)
    # Content opening with a comment, a style or the like: parse it as a page, as it is read.
    page = BeautifulSoup(node.decode_contents(formatter=SERIALISER), "lxml").body
    if page is None:
        return ""
    _resolve_urls(page, base_url)
    return clean._CLEANER.clean(page.decode_contents(formatter=SERIALISER))


# --- pager, header, breadcrumb, title -----------------------------------------------------------
def _find_pager(soup: BeautifulSoup) -> Tag | None:
    # The first div.pg showing a current page or a total, looked for first in the bar above
    # the posts (comment pagers inside posts only have a "下一页" link).
    bar = soup.select_one(S.pager_bar)
    for scope in (bar, soup) if bar is not None else (soup,):
        for pager in scope.css.iselect(S.pager):
            if pager.select_one(S.pager_current) is not None or pager.select_one(S.pager_total) is not None:
                return pager
    return None


def read_pages(soup: BeautifulSoup, url_page: int | None) -> tuple[int, int]:
    """(current page, page count) from the pager; a page without a pager is page 1 of 1."""
    pager = _find_pager(soup)
    if pager is None:
        return 1, 1
    numbers: list[int] = []
    total = pager.select_one(S.pager_total)
    if total is not None:
        match = _PAGES_TOTAL.search(total.get("title") or "")
        if match:
            numbers.append(int(match[1]))
    for link in pager.select(S.pager_links):
        numbers.extend(int(n) for n in _DIGITS.findall(link.get_text()))
    current_node = pager.select_one(S.pager_current)
    current_digits = _DIGITS.findall(current_node.get_text()) if current_node is not None else []
    current = max(1, int(current_digits[0]) if current_digits else (url_page or 1))
    return current, max([current, *numbers])


def _header_counts(postlist: Tag) -> tuple[int | None, int | None]:
    """(replies, views) from the page-1 header, read by their labels 回复 and 查看."""
    label = ""
    views = replies = None
    unlabelled: list[int | None] = []
    box = postlist.select_one(S.header_box)
    for span in box.select(S.header_counts) if box is not None else ():
        classes = _classes(span)
        if "xg1" in classes:
            label = _text(span)
        elif "xi1" in classes:
            value = _count(span)
            if "查看" in label:
                views = value
            elif "回复" in label:
                replies = value
            else:
                unlabelled.append(value)
            label = ""
    if views is None and replies is None and len(unlabelled) >= 2:
        views, replies = unlabelled[0], unlabelled[1]  # the template prints views first
    return replies, views


def _breadcrumb_board(soup: BeautifulSoup) -> tuple[str | None, int | None]:
    """(name, fid) of the deepest board in the breadcrumb; a board linked by its alias takes
    its number from the post buttons."""
    found: tuple[str | None, int | None] = (None, None)
    breadcrumb = soup.select_one(S.breadcrumb)
    for link in breadcrumb.select(S.breadcrumb_links) if breadcrumb is not None else ():
        href = link.get("href") or ""
        ref = board_ref(href)
        if ref:
            found = (_text(link) or None, ref[0])
        elif _is_board_alias(href):
            found = (_text(link) or None, None)
    if found[0] is not None and found[1] is None:
        for button in soup.css.iselect(S.fid_links):
            match = _FID_PARAM.search(f'{button.get("href") or ""} {button.get("onclick") or ""}')
            if match and int(match[1]) > 0:
                return found[0], int(match[1])
    return found


def _thread_title(soup: BeautifulSoup) -> str:
    title = _text(soup.select_one(S.subject))
    if title:
        return title
    head_title = _text(soup.find("title"))  # "{subject} - {board} - {site} - Powered by Discuz!"
    return head_title.split(" - ")[0].strip() if " - " in head_title else ""


def _thread_tid(ctx: ParseContext, canonical: str | None, tables: list[Tag]) -> int | None:
    for href in (canonical, ctx.url):
        if href:
            ref = thread_ref(href)
            if ref:
                return ref[0]
    for table in tables:
        link = table.select_one(S.floor_link)
        tid = _tid_from_href(link.get("href") or "") if link is not None else None
        if tid:
            return tid
    return None


def _post_tables(container: Tag) -> list[Tag]:
    return [t for t in container.select(S.post_table) if _PID_ID.fullmatch(t.get("id") or "")]


def _floor_label(table: Tag) -> str:
    link = table.select_one(S.floor_link)
    return _text(link if link is not None else table.select_one(S.floor_label_any))


# --- one post -----------------------------------------------------------------------------------
def _author(table: Tag, *, first_link_may_match: bool = True) -> tuple[str | None, int | None]:
    selectors = S.author_links if first_link_may_match else S.author_links[1:]
    for selector in selectors:
        for link in table.css.iselect(selector):  # lazily: the first named link ends the walk
            name = _text(link)
            if name:
                return name, _uid(link.get("href"))
    # Anonymous posts and guests: the name stands as bare text before the time.
    header = table.select_one(S.author_header)
    if header is None:
        return None, None
    pieces = []
    for child in header.children:
        if isinstance(child, Tag) and _matches_or_holds(child, S.posted_at):
            break
        if _is_text(child):
            pieces.append(str(child))
    words = [w for w in normalise_whitespace(" ".join(pieces)).split(" ") if w and w not in THREAD_STARTER_MARKS]
    return (" ".join(words) or None), None


def _posted_at(table: Tag, tz: timezone, fetched: datetime | None) -> tuple[str | None, str]:
    em = table.select_one(S.posted_at)
    if em is None:
        return None, ""
    raw = _text(em)
    if raw.startswith(POSTED_PREFIX):
        raw = raw[len(POSTED_PREFIX) :].strip()
    titled = em.select_one(S.posted_at_title)
    if titled is not None:
        exact = parse_absolute_time(titled.get("title") or "", tz)
        if exact:
            return exact, raw
    return parse_post_time(raw, tz, fetched), raw


def _image_names(table: Tag) -> dict[str, str]:
    """aid -> file name from the hidden tips next to inline images (read before the noise
    filters remove them as hidden elements)."""
    names = {}
    for tip in table.select(S.image_tip_names):
        aid = (tip.get("id") or "")[len("aimg_") : -len("_menu")]
        name = _text(tip.select_one("strong"))
        if aid and name:
            names[aid] = name
    return names


def _is_furniture_image(img: Tag, url: str) -> bool:
    return "smilieid" in img.attrs or "smilie" in _classes(img) or any(p in url for p in FURNITURE_IMAGE_PATHS)


def _attachments(nodes: list[Tag], base_url: str, names: dict[str, str]) -> list[Attachment]:
    found: dict[tuple[str, str], Attachment] = {}
    for node in nodes:
        images = node.select("img")
        quotes = {id(q) for q in node.select(S.quote)} if images else set()
        for img in images:
            if _inside(img, node, quotes):  # the quoted post's image, not this post's
                continue
            source = next((img[a] for a in IMAGE_SOURCE_ATTRIBUTES if img.get(a)), None)
            url = absolute_url(source, base_url)
            if not _is_web_url(url) or _is_furniture_image(img, url):
                continue
            aid = (img.get("aid") or "").strip() or None
            name = names.get(aid or "") or img.get("alt") or img.get("title") or None
            found.setdefault(("aid", aid) if aid else ("url", url), Attachment(url=url, name=name, aid=aid))
        for link in node.select(S.attachment_links):
            url = absolute_url(link.get("href"), base_url)
            if not _is_web_url(url):
                continue
            match = _AID_ID.fullmatch(link.get("id") or "")
            aid = match[1] if match else None
            name = _text(link) or None
            key = ("aid", aid) if aid else ("url", url)
            if key in found:  # the link of an image already found: it only adds the file name
                if not found[key].name and name:
                    found[key] = replace(found[key], name=name)
            else:
                found[key] = Attachment(url=url, name=name, aid=aid, is_image=False)
    return list(found.values())


def _edit_note(body: Tag) -> str | None:
    quotes = {id(q) for q in body.select(S.quote)}
    for note in body.css.iselect(S.edit_note):
        if _inside(note, body, quotes):
            continue
        text = _text(note) or None
        _remove_following_breaks(note, 2)  # the template follows it with <br /><br />
        note.decompose()
        return text
    return None


def _line_before(node: PageElement) -> list[PageElement]:
    """The siblings before `node` back to the line's start (a <br> or the parent's start)."""
    line = []
    sibling = node.previous_sibling
    while sibling is not None and not (isinstance(sibling, Tag) and sibling.name == "br"):
        line.insert(0, sibling)
        sibling = sibling.previous_sibling
    return line


def _take_quotes(body: Tag, noise: NoiseRules, counts: dict[str, int]) -> list[Quote]:
    """Read every outermost quote into a Quote and remove it from `body`."""
    every_quote = body.select(S.quote)
    quote_ids = {id(quote) for quote in every_quote}
    outermost = [q for q in every_quote if not _inside(q, body, quote_ids)]
    quotes = []
    for quote in outermost:
        block = quote.select_one(S.quote_block) or quote
        author = posted_raw = pid = attribution = None
        link = block.select_one(S.quote_attribution)
        if link is not None:
            try:
                pid = ascii_number(_query(link.get("href") or "")[1].get("pid", ""))
            except ValueError:  # a link no URL parser reads
                pid = None
            # <font size=2><a ...><font color=...>X 发表于 T</font></a></font><br />
            wrapper = link
            while wrapper.parent is not None and wrapper.parent is not block and wrapper.parent.name == "font":
                wrapper = wrapper.parent
            # Before X3 the link holds only a back-arrow image after the words.
            words = [] if _text(link) or wrapper is not link else _line_before(link)
            attribution = " ".join(filter(None, (_text(n) for n in (*words, wrapper))))
            author, posted_raw = _split_attribution(attribution)
            if author is None and posted_raw is None:
                words = []  # not an attribution: the words stay in the quoted text
                attribution = None
            else:
                _remove_following_breaks(wrapper, 1)
            for node in (*words, wrapper):
                node.extract()
        text, text_counts = clean_node_text(block, noise)
        merge_counts(counts, text_counts)
        quotes.append(Quote(text=text, author=author, posted_at_raw=posted_raw, pid=pid, attribution=attribution))
    for quote in outermost:
        quote.decompose()
    return quotes


def _status_without_body(table: Tag) -> PostStatus:
    if "plhin" not in _classes(table):
        return PostStatus.DELETED  # 无效楼层，该帖已经被删除
    if table.select_one(S.password_input) is not None:
        return PostStatus.HIDDEN
    notices = " ".join(_text(n) for n in table.select(S.locked))
    return PostStatus.BLOCKED if BLOCKED_NOTICE_MARK in notices else PostStatus.HIDDEN


def _link_players(body: Tag, base_url: str) -> bool:
    """The engine's _link_players: a link to each player's file put before the player."""
    for forged in body.select(S.player_links):
        del forged[clean.PLAYER_LINK_ATTRIBUTE]
    linked: set[str] = set()
    read: set[int] = set()
    for player in body.select(S.players):
        if player.name == "script":
            found = player_files_in_script(player.string or "")
        elif _inside(player, body, read):
            continue  # its sources were read with the player around it
        else:
            read.add(id(player))
            parts = (player, *player.select(S.player_sources))
            found = [player_file_of_element(part.name, part.attrs) for part in parts]
        for url in player_file_urls(found, base_url):
            if url not in linked:
                linked.add(url)
                player.insert_before(BeautifulSoup(player_link_html(url), "html.parser").a)
    return bool(linked)


def _post_parts(table: Tag, ctx: ParseContext, *, rare_in_table_may_match: bool = True) -> _PostParts:
    body = table.select_one(S.body)
    if body is None:
        return _PostParts(status=_status_without_body(table))
    # One query each tells whether the body, or the post around it, holds any of the parts
    # most posts lack; cleaning only removes elements, so none can turn up later.
    rare_in_body = body.select_one(_RARE_IN_BODY) is not None
    rare_in_table = rare_in_table_may_match and table.select_one(_RARE_IN_TABLE) is not None
    box = (table.select_one(S.post_body_box) or table) if rare_in_table else None
    hidden_part = (rare_in_body and any(not _text(notice).startswith(CREDITS_SHOWN_MARKS)
                                        for notice in body.select(S.locked))) or (
        box is not None and box.select_one(f"{S.password_input}, {S.pay_button}") is not None
    )
    names = _image_names(table) if rare_in_table else {}
    # Most bodies are text, <br> and jammer elements of text: read as they are, no copy.
    # Others are cleaned on a copy; the page itself stays as it was parsed.
    plain = None if rare_in_body else plain_body(body, ctx.noise)
    counts: dict[str, int] = {}
    linked_players = False
    if plain is None:
        body = copy.copy(body)
        linked_players = _link_players(body, ctx.url)  # before layer 1 takes the scripts
        counts = strip_markup_noise(body)
        plain = None if rare_in_body else plain_body(body, ctx.noise)
    edit_note = None
    if plain is not None:
        content_html, content_text, text_counts = plain
    else:
        add_counts(counts, NOISE_JAMMER_TEXT, strip_jammer_nodes(body))
        if rare_in_body:
            remove_elements(body, S.body_furniture)
            edit_note = _edit_note(body)
        merge_counts(counts, clean_tree_phrases(body, ctx.noise))
        content_html = sanitize(body, ctx.url)  # quotes stay in the HTML
        if linked_players:  # a player showed no words
            remove_elements(body, (S.player_links,))
    unplaced = table.select_one(S.unplaced_attachments) if rare_in_table else None
    if unplaced is not None:
        unplaced = copy.copy(unplaced)
        for image_list in unplaced.select(S.hidden_image_list):  # hidden by design, not noise
            if "style" in image_list.attrs:
                del image_list["style"]
        strip_markup_noise(unplaced)  # page furniture, not post noise: not counted
    attachments = []
    if rare_in_body or unplaced is not None:
        attachments = _attachments([body] + ([unplaced] if unplaced is not None else []), ctx.url, names)
    quotes = []
    if rare_in_body:
        quotes = _take_quotes(body, ctx.noise, counts)
        remove_elements(body, S.text_furniture)
    if plain is None:
        if rare_in_body:  # a code block's lines keep their white space
            for line in body.select(S.code_lines):
                line.insert(0, NavigableString(clean.PREFORMATTED_LINE))
        content_text, text_counts = clean_node_text(body, ctx.noise)
    merge_counts(counts, text_counts)
    return _PostParts(
        status=PostStatus.HIDDEN if hidden_part else PostStatus.NORMAL,
        content_text=content_text,
        content_html=content_html,
        quotes=quotes,
        edit_note=edit_note,
        attachments=attachments,
        noise=counts,
    )


def _signature(table: Tag) -> str | None:
    sign = table.select_one(S.signature)
    if sign is None:
        return None
    sign = copy.copy(sign)
    strip_markup_noise(sign)
    return html_to_text(sign) or None


def _subject(table: Tag, noise: NoiseRules) -> str | None:
    head = table.select_one(S.reply_subject)
    if head is None:
        return None
    head = copy.copy(head)
    strip_markup_noise(head)
    return clean_node_text(head, noise)[0] or None


def _poll(first_post: Tag) -> Poll | None:
    form = first_post.select_one(S.poll)
    if form is None:
        return None
    summary = _text(form.select_one(S.poll_summary))
    options: list[tuple[str, int | None]] = []
    cells = form.select(S.poll_image_options)
    for cell in cells:
        match = _POLL_IMAGE_VOTES.match(_text(cell.select_one(S.poll_image_votes)))
        options.append((_text(cell.select_one(S.poll_image_text)), ascii_number(match[1]) if match else None))
    for row in form.select(S.poll_rows) if not cells else ():
        label = row.select_one(S.poll_option)
        if label is not None:
            options.append((_POLL_OPTION_NUMBER.sub("", _text(label), count=1), None))
        elif options and options[-1][1] is None:
            match = _POLL_ROW_VOTES.match(_text(row.select_one(S.poll_votes)))
            if match:
                options[-1] = (options[-1][0], ascii_number(match[1]))
    return poll_record(summary, options, _text(form.select_one(S.poll_countdown)))


def _defined_terms(root: Tag) -> list[tuple[str, str]]:
    terms, label = [], None
    for node in root.select(S.defined_terms):
        if node.name == "dt":
            label = _text(node).rstrip(CLASSIFIED_TITLE_ENDS).rstrip()
        elif label:
            if value := _text(node):
                terms.append((label, value))
            label = None
    return terms


def _trade_item(item: Tag) -> tuple[tuple[str, str], ...]:
    name = item.select_one(S.trade_name)
    if name is None:
        return _filled([("removed", _text(item))])
    fields = [("goods", _text(name)), *_defined_terms(item)]
    price = item.select_one(S.trade_price)
    if price is not None:
        cost_text = _text(price.select_one(S.trade_cost_price))
        fields += [("price", _text(price).removesuffix(cost_text).rstrip()), ("cost_price", cost_text)]
    return _filled(fields)


def _special(first_post: Tag) -> SpecialThread | None:
    box = first_post.select_one(S.special_box)
    if box is None:
        return None
    reward = box.select_one(S.reward)
    if reward is not None:
        price = reward.select_one(S.reward_price)
        following = price.next_sibling if price is not None else None
        credit = normalise_whitespace(str(following)) if _is_text(following) else ""
        fields = [("price", _text(price)), ("credit", credit), ("state", _text(reward.select_one(S.reward_state)))]
        best_pid = None
        best = box.select_one(S.reward_best)
        if best is not None:
            fields.append(("best_answer_author", _text(best.select_one(S.reward_best_author))))
            link = best.select_one(S.reward_best_link)
            match = _FINDPOST_PID.search(link.get("onclick") or "") if link is not None else None
            best_pid = ascii_number(match[1]) if match else None
        return SpecialThread(kind="reward", fields=_filled(fields), best_answer_pid=best_pid)
    activity = box.select_one(S.activity)
    if activity is not None:
        return SpecialThread(kind="activity", fields=tuple(_defined_terms(activity)))
    sides = box.select_one(S.debate_sides)
    if sides is None:
        goods = box.select(S.trade_goods)
        if not goods:
            return None
        return SpecialThread(kind="trade", fields=tuple(field for item in goods for field in _trade_item(item)))

    def after_label(node: Tag | None) -> str:
        if node is None:
            return ""
        return _text(node).removeprefix(_text(node.select_one("strong"))).lstrip(CLASSIFIED_TITLE_ENDS + " ")

    fields = [("verdict", _text(box.select_one(S.debate_verdict))),
              ("umpire_point", after_label(box.select_one(S.debate_umpire_point))),
              ("best_debater", after_label(box.select_one(S.debate_best_debater))),
              ("schedule", _text(box.select_one(S.debate_schedule)))]
    for side, point_selector, debaters_selector in zip(("affirm", "negative"), S.debate_points, S.debate_debaters):
        point = sides.select_one(point_selector)
        votes = _FIRST_NUMBER.search(_text(point.select_one("strong"))) if point is not None else None
        debaters = _FIRST_NUMBER.search(_text(box.select_one(debaters_selector)))
        fields += [(f"{side}_point", _text(point.select_one("p")) if point is not None else ""),
                   (f"{side}_votes", votes[0] if votes else ""),
                   (f"{side}_debaters", debaters[0] if debaters else "")]
    return SpecialThread(kind="debate", fields=_filled(fields))


def _classified(first_post: Tag) -> ClassifiedInfo | None:
    box = first_post.select_one(S.classified_box)
    if box is None:
        return None
    table = box.select_one(S.classified)
    if table is None:
        notice = _text(box)
        return ClassifiedInfo(sort_name=None, fields=(), expired_notice=notice) if notice else None
    fields = []
    for row in table.select(S.classified_rows):
        title = row.select_one(S.classified_title)
        if title is not None:
            value = _text(row.select_one(S.classified_value))
            fields.append((_text(title).rstrip(CLASSIFIED_TITLE_ENDS).rstrip(), value))
    return ClassifiedInfo(sort_name=_text(table.select_one(S.classified_caption)) or None, fields=tuple(fields))


def _parse_post(table: Tag, floor: int | None, label: str, ctx: ParseContext, tz: timezone,
                fetched: datetime | None, *, any_often_absent: bool = True) -> Post:
    author, author_uid = _author(table, first_link_may_match=any_often_absent)
    posted_at, posted_raw = _posted_at(table, tz, fetched)
    parts = _post_parts(table, ctx, rare_in_table_may_match=any_often_absent)
    return Post(
        pid=int(_PID_ID.fullmatch(table["id"])[1]),
        floor=floor,
        floor_label=label,
        author=author,
        author_uid=author_uid,
        posted_at=posted_at,
        posted_at_raw=posted_raw,
        content_text=parts.content_text,
        content_html=parts.content_html,
        media_refs=media_refs(parts.content_html, ctx.url, parts.attachments or ()),
        quotes=parts.quotes or [],
        signature=_signature(table) if any_often_absent and parts.status is not PostStatus.DELETED else None,
        edit_note=parts.edit_note,
        attachments=parts.attachments or [],
        status=parts.status,
        noise_removed=parts.noise or {},
        subject=_subject(table, ctx.noise) if any_often_absent and floor != 1 else None,
    )


# --- the page -----------------------------------------------------------------------------------
def parse_thread(html: str, ctx: ParseContext) -> ThreadPage:
    """Parse a Discuz thread page with BeautifulSoup over lxml. Raises only ParseError."""
    soup = BeautifulSoup(html, "lxml")
    try:
        return _parse_thread(soup, ctx)
    except ParseError:
        raise
    except Exception as exc:  # anything else is malformed input, as in ours
        raise ParseError(f"cannot read thread page {ctx.url}: {type(exc).__name__}: {exc}") from exc


def _parse_thread(soup: BeautifulSoup, ctx: ParseContext) -> ThreadPage:
    tz = site_timezone(ctx.utc_offset)
    fetched = fetch_time(ctx.fetched_at, tz)
    postlist = soup.select_one(S.postlist)
    tables = _post_tables(postlist) if postlist is not None else []
    title = _thread_title(soup)
    if not tables:
        raise ParseError(f"no posts (div#postlist > table#pid…) on thread page {ctx.url}")
    if not title:
        raise ParseError(f"no thread title (#thread_subject or <title>) on thread page {ctx.url}")
    url_ref = thread_ref(ctx.url)
    page, page_count = read_pages(soup, url_ref[1] if url_ref else None)
    canonical_node = soup.select_one(S.canonical)
    canonical = absolute_url(canonical_node.get("href"), ctx.url) if canonical_node is not None else None
    replies, views = _header_counts(postlist)
    board, fid = _breadcrumb_board(soup)
    labels = [_floor_label(t) for t in tables]
    floors = assign_floors(labels, page, page_count)
    # One walk of the post list tells which posts hold anything of the often absent parts.
    often_absent_holders = _holders(postlist, _OFTEN_ABSENT_IN_TABLE)
    posts = [
        _parse_post(table, floor, label, ctx, tz, fetched, any_often_absent=id(table) in often_absent_holders)
        for table, floor, label in zip(tables, floors, labels)
    ]
    first_post = next((table for table, floor in zip(tables, floors) if floor == 1), None)
    return ThreadPage(
        tid=_thread_tid(ctx, canonical, tables),
        title=title,
        page=page,
        page_count=page_count,
        posts=posts,
        board=board,
        fid=fid,
        replies=replies,
        views=views,
        canonical_url=canonical,
        poll=_poll(first_post) if first_post is not None else None,
        classified=_classified(first_post) if first_post is not None else None,
        special=_special(first_post) if first_post is not None else None,
    )
