"""Noise filters, in the four layers of the design, each counting what it removed.

1. markup: jammer elements, hidden elements, ad slots, scripts and styles (on a parsed tree);
2. jammer text: Discuz's jammer alphabet at line starts and ends, and whole lines of it;
3. site phrases: watermark phrases named in a site's config;
4. learned phrases: recurring phrases proposed from frequency, applied once confirmed.

Everything here is pure: text or a tree in, text or a tree and counts out. The functions that
take a tree change that tree (the caller parses or clones it for them) and never touch the network.
Engine-specific selectors come in as data (MarkupSelectors); this module knows no forum software.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import nh3
from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper import config

try:  # built from scraper/_plaintext.c by the install; optional, see setup.py
    from scraper._plaintext import cut_plainest_noise as _cut_plainest_noise_c
    from scraper._plaintext import plain_layout as _plain_layout_c
except ImportError:  # no compiler at install time: the python_ versions give the same results
    _cut_plainest_noise_c = _plain_layout_c = None


@dataclass(frozen=True)
class NoiseRules:
    """A site's own noise, from its config (layers 3 and 4).

    phrases: watermark phrases removed wherever they appear in a post.
    learned: phrases proposed by learn_phrases() and confirmed by the operator.
    text_ads: whole lines that a *text rendering* of the site shows where its ad slots
        were; the HTML path removes ad slots by their markup and needs no list.
    """

    phrases: tuple[str, ...] = ()
    learned: tuple[str, ...] = ()
    text_ads: tuple[str, ...] = ()


# Discuz jammer(): chr(32..59) . ' ' . chr(63..126), 5-15 times per line break. Text
# renderings turn some spaces into U+00A0, including the chr(32) a unit may start with.
JAMMER_UNIT = r"[\x20-\x3b\xa0][\x20\xa0][\x3f-\x7e]"
_RUN = rf"(?:{JAMMER_UNIT}){{{config.JAMMER_MIN_UNITS},}}"
_LEADING_RUN = re.compile(rf"^[\x20\xa0]*(?P<run>{_RUN})")
# A trailing run is matched on the reversed line, anchored: the same match as
# rf"{_RUN}[\x20\xa0]*$" (a run cannot end in a space, so its end is fixed and the longest
# chain of units wins either way), but linear, where an unanchored search from every
# position is quadratic on a long line of jammer-like characters.
_REVERSED_UNIT = r"[\x3f-\x7e][\x20\xa0][\x20-\x3b\xa0]"
_TRAILING_RUN_REVERSED = re.compile(rf"^[\x20\xa0]*(?P<run>(?:{_REVERSED_UNIT}){{{config.JAMMER_MIN_UNITS},}})")


# Any run, leading or trailing, holds this many units in a row. The check drops every character
# outside Latin-1 first (the jammer alphabet is inside it, so a run stays whole): forum text is
# mostly CJK, and the search then covers a tenth of it. The pattern leaves out the first unit's
# first character: starting at a space, re scans several times faster. Fixed length: linear.
_SHORTEST_RUN_LATIN1 = re.compile(
    rf"[\x20\xa0][\x3f-\x7e](?:{JAMMER_UNIT}){{{config.JAMMER_MIN_UNITS - 1}}}".encode("latin-1")
)


def could_hold_jammer(text: str) -> bool:
    """False when `text` holds no jammer run anywhere, so no line of it needs stripping."""
    return _SHORTEST_RUN_LATIN1.search(text.encode("latin-1", "ignore")) is not None


def _reads_as_text(run: str) -> bool:
    """Whether a run of jammer-shaped units shows an order jammer() never draws, so is text:
    its units open with one separator or two in turn ("选项: A, B, C, D, E", "a, b; c, d; e, f",
    "a + b + c + d + e"), or their first or last characters count up ("1 A2 B3 C4 D5 E", an
    answer key). jammer() draws every unit's first character from 28 and its last from 64 at
    random: a run of 5 units shows one of these orders about once in 1,500 (at most two
    distinct first characters), a longer one far more rarely."""
    firsts, lasts = run[0::3], run[2::3]
    return len(set(firsts)) <= 2 or _counts_up(firsts) or _counts_up(lasts)


def _counts_up(characters: str) -> bool:
    return all(ord(later) - ord(earlier) == 1 for earlier, later in zip(characters, characters[1:]))


def _strip_leading_run(text: str) -> tuple[str, int]:
    match = _LEADING_RUN.match(text)
    if match is None or _reads_as_text(match["run"]):
        return text, 0
    return text[match.end() :], 1


def _strip_trailing_run(text: str) -> tuple[str, int]:
    match = _TRAILING_RUN_REVERSED.match(text[::-1])
    if match is None or _reads_as_text(match["run"][::-1]):
        return text, 0
    return text[: len(text) - match.end()], 1


NOISE_JAMMER_TEXT = "jammer_text_runs"
NOISE_SITE_PHRASES = "site_phrases"
NOISE_LEARNED_PHRASES = "learned_phrases"


def strip_jammer_line(line: str) -> tuple[str, int]:
    """Remove jammer runs at the start and the end of one line.

    Returns the line and the number of runs removed. A line that was nothing but jammer
    comes back empty.
    """
    line, leading = _strip_leading_run(line)
    # Two runs can touch (one per neighbouring line break), so a trailing match may remain
    # after a leading one; a whole-line run is already gone.
    line, trailing = _strip_trailing_run(line)
    return line, leading + trailing


def strip_jammer_text(text: str) -> tuple[str, int]:
    """Apply strip_jammer_line to every line of `text`, and to every cell of a table row's
    line (TABLE_CELL_BREAK); drop lines that were only jammer."""
    if not could_hold_jammer(text):
        return text, 0
    out: list[str] = []
    removed = 0
    for line in text.split("\n"):
        if TABLE_CELL_BREAK in line:
            cleaned, n = _strip_jammer_cells(line)
        else:
            cleaned, n = strip_jammer_line(line)
        removed += n
        if n and not cleaned.replace(TABLE_CELL_BREAK, "").replace(CELL_LINE_BREAK, "").strip(" \xa0\t"):
            continue
        out.append(cleaned)
    return "\n".join(out), removed


def _strip_jammer_cells(row: str) -> tuple[str, int]:
    # A cell's edges, and its lines' inside it, are line edges to jammer(), as they are to a
    # reader of the table.
    cells = []
    removed = 0
    for cell in row.split(TABLE_CELL_BREAK):
        lines = []
        for line in cell.split(CELL_LINE_BREAK):
            cleaned, n = strip_jammer_line(line)
            lines.append(cleaned)
            removed += n
        cells.append(CELL_LINE_BREAK.join(lines))
    return TABLE_CELL_BREAK.join(cells), removed


def remove_phrases(text: str, phrases: list[str] | tuple[str, ...]) -> tuple[str, int]:
    """Remove every occurrence of each phrase (site watermarks, confirmed learned phrases)."""
    removed = 0
    for phrase in phrases:
        if phrase:
            n = text.count(phrase)
            if n:
                text = text.replace(phrase, "")
                removed += n
    return text, removed


def normalise_whitespace(text: str) -> str:
    """Collapse every run of white space (U+00A0 and U+3000 included) into one space, and trim.
    str.split() splits on exactly what str.isspace() and re's \\s take for white space, at
    several times the speed of a pattern (the engine calls this a hundred times a page)."""
    return " ".join(text.split())


def add_counts(total: dict[str, int], name: str, n: int) -> None:
    """Record `n` removals under `name`, keeping the dict free of zero entries."""
    if n:
        total[name] = total.get(name, 0) + n


# --- parsing ----------------------------------------------------------------------------
# Lexbor scans the whole stack of open elements for each block start tag, so a page of 100k
# nested <div>s takes about half a minute to parse. Real forum pages nest a few dozen deep;
# tags beyond this depth are dropped before parsing (their text is kept).
MAX_NESTING_DEPTH = 512

# A start or end tag, or a comment opening. "[^<>]*" keeps every scan linear: a tag that
# never closes costs one scan up to the next "<", not one to the end of the page.
_TAG_TOKEN = re.compile(r"<!--|<(/?)([a-zA-Z][^\s/<>]*)[^<>]*>")
# Their content is text, not markup: skip to the end tag (or to the end of the page).
_RAW_TEXT_END = {
    name: re.compile(rf"</{name}", re.I)
    for name in "script style textarea title xmp iframe noembed noframes noscript plaintext".split()
}
# Elements that never hold children, or whose end tag HTML lets the parser imply: neither can
# make a deep stack, so they are not counted.
_VOID_TAGS = frozenset(
    "area base basefont bgsound br col embed frame hr img input keygen link meta param source track wbr".split()
)
_OPTIONAL_END_TAGS = frozenset(
    "body caption colgroup dd dt head html li optgroup option p rb rp rt rtc tbody td tfoot th thead tr".split()
)


def limit_nesting(html: str, max_depth: int = MAX_NESTING_DEPTH) -> str:
    """Drop start and end tags nested deeper than `max_depth`, keeping all text.

    One linear scan over the tags; an ordinary page comes back unchanged (the same object).
    Used by parse_html to keep pathological pages from stalling the parser.
    """
    stack: list[str] = []
    open_by_name: Counter[str] = Counter()
    dropped_by_name: Counter[str] = Counter()
    cuts: list[tuple[int, int]] = []
    position = 0
    while (match := _TAG_TOKEN.search(html, position)) is not None:
        position = match.end()
        if match.group(2) is None:  # a comment: nothing inside it counts
            close = html.find("-->", position)
            if close < 0:
                break
            position = close + 3
            continue
        name = match.group(2).lower()
        closing = bool(match.group(1))
        if name in _RAW_TEXT_END:
            if not closing:
                end_tag = _RAW_TEXT_END[name].search(html, position)
                if end_tag is None:
                    break
                position = end_tag.start()
            continue
        if name in _VOID_TAGS or name in _OPTIONAL_END_TAGS:
            continue
        if closing:
            if dropped_by_name[name]:
                dropped_by_name[name] -= 1
                cuts.append(match.span())
            elif open_by_name[name]:
                while stack:  # an end tag closes whatever is still open inside it
                    top = stack.pop()
                    open_by_name[top] -= 1
                    if top == name:
                        break
        elif len(stack) >= max_depth:
            dropped_by_name[name] += 1
            cuts.append(match.span())
        else:
            stack.append(name)
            open_by_name[name] += 1
    if not cuts:
        return html
    pieces, position = [], 0
    for start, end in cuts:
        pieces.append(html[position:start])
        position = end
    pieces.append(html[position:])
    return "".join(pieces)


# Lexbor's cost grows with tags times depth: on this many tags even the worst nesting parses
# in a fraction of a second (measured: 10,000 nested <div>s, 0.2 s), so such a page is parsed
# as it is and its depth checked afterwards; a larger one takes the careful path at once.
UNGUARDED_PARSE_MAX_TAGS = 10_000
# Match any element deeper than MAX_NESTING_DEPTH (the html element is depth 1), and deeper
# than ordinary pages nest (Discuz pages: about 25). Parsing the long selector alone costs
# about 80 us, so the short one is asked first; an ordinary page never needs the long one.
def deeper_than(depth: int) -> str:
    """A selector matching an element nested deeper than `depth` (the html element is at 1),
    when the tree has one.

    It ends in a last child with no element inside: where an element is that deep, so is the
    deepest one, which holds no element, and so is the last child of its parent, which holds
    none either. Lexbor matches from the right, climbing from each candidate; on an ordinary
    page, where nothing matches, climbing only from such leaves takes about two thirds of
    the time of climbing from every last child (:has(*) stops at the first element inside).
    """
    return " > ".join(["*"] * depth + ["*:last-child:not(:has(*))"])


_TOO_DEEP = deeper_than(MAX_NESTING_DEPTH)
ORDINARY_NESTING_DEPTH = 32
_DEEPER_THAN_ORDINARY = deeper_than(ORDINARY_NESTING_DEPTH)


def parse_html(html: str) -> LexborHTMLParser:
    """Parse decoded page text into a tree, defusing pathological nesting.

    A page whose tree nests deeper than MAX_NESTING_DEPTH is parsed again through
    limit_nesting; an ordinary page is parsed once, as it is.
    Takes `str` (never bytes: lexbor's own sniffing reads only 1 KB and misreads GBK).
    """
    if html.count("<") <= UNGUARDED_PARSE_MAX_TAGS:
        tree = LexborHTMLParser(html)
        if tree.css_first(_DEEPER_THAN_ORDINARY) is None or tree.css_first(_TOO_DEEP) is None:
            return tree
    return LexborHTMLParser(limit_nesting(html))


# --- layer 1: markup ----------------------------------------------------------------------
@dataclass(frozen=True)
class MarkupSelectors:
    """CSS selectors of an engine's markup noise; the engine supplies them as data.

    jammer: elements that hold only anti-copy junk (Discuz: "font.jammer").
    jammer_start_tag: the start tag of the plainest jammer element as the serialiser writes
        it (Discuz: '<font class="jammer">'), for clean_plain_body; it must match `jammer`.
    hidden_start_tag: the same for the plainest hidden element (Discuz: '<span
        style="display:none">'); with both, clean_plain_body cuts the two in one pass in C.
    ad_slot: candidate ad containers; a candidate is an ad only when one of its class
        tokens starts with ad_class_prefix (Discuz: div[class*="a_"] and "a_").
    Hidden elements (inline display:none), scripts and styles need no selector.
    """

    jammer: str = ""
    jammer_start_tag: str = ""
    hidden_start_tag: str = ""
    ad_slot: str = ""
    ad_class_prefix: str = ""


NOISE_JAMMER_ELEMENTS = "jammer_elements"
NOISE_HIDDEN_ELEMENTS = "hidden_elements"
NOISE_AD_SLOTS = "ad_slots"
NOISE_SCRIPTS = "scripts"
NOISE_STYLES = "styles"

_DISPLAY_NONE = re.compile(r"(?:^|[;\s])display\s*:\s*none\b", re.I)


def _has_class_prefix(node: LexborNode, prefix: str) -> bool:
    classes = node.attributes.get("class") or ""
    return any(token.startswith(prefix) for token in classes.split())


def _markup_noise_kinds(node: LexborNode, selectors: MarkupSelectors) -> list[tuple[str, list[LexborNode]]]:
    """For each kind of markup noise, in order of precedence, the elements that match it."""
    kinds: list[tuple[str, list[LexborNode]]] = []
    if selectors.jammer:
        kinds.append((NOISE_JAMMER_ELEMENTS, node.css(selectors.jammer)))
    # The selector narrows the candidates in C; the pattern decides.
    hidden = [n for n in node.css('[style*="none" i]') if _DISPLAY_NONE.search(n.attributes.get("style") or "")]
    kinds.append((NOISE_HIDDEN_ELEMENTS, hidden))
    # Ads, scripts and styles are rare: one query for the three (each costs a selector parse).
    rare = node.css(", ".join(filter(None, (selectors.ad_slot, "script", "style"))))
    if selectors.ad_slot:
        ads = [
            n
            for n in rare
            if (n.tag not in ("script", "style") or n.css_matches(selectors.ad_slot))
            and (not selectors.ad_class_prefix or _has_class_prefix(n, selectors.ad_class_prefix))
        ]
        kinds.append((NOISE_AD_SLOTS, ads))
    kinds.append((NOISE_SCRIPTS, [n for n in rare if n.tag == "script"]))
    kinds.append((NOISE_STYLES, [n for n in rare if n.tag == "style"]))
    return kinds


def _remove_outermost(node: LexborNode, kinds: list[tuple[str, list[LexborNode]]]) -> dict[str, int]:
    """Decompose every element below `node` listed in one of `kinds`; only the outermost of
    nested matches is removed and counted, under the first kind that lists it."""
    kind_of: dict[int, str] = {}
    elements: dict[int, LexborNode] = {}
    for name, matches in reversed(kinds):  # the first kind listing an element wins
        for element in matches:
            kind_of[element.mem_id] = name
            elements[element.mem_id] = element
    root_id = node.mem_id
    kind_of.pop(root_id, None)  # css() lists the node itself when it matches; it stays
    removed: dict[str, int] = {}  # a plain dict: building a Counter costs more than the count
    outermost: list[LexborNode] = []
    for element_id, kind in kind_of.items():
        # Matches are few and trees shallow: climbing to `node` is cheaper than walking the tree.
        parent = elements[element_id].parent
        while parent is not None and parent.mem_id != root_id and parent.mem_id not in kind_of:
            parent = parent.parent
        if parent is not None and parent.mem_id == root_id:
            removed[kind] = removed.get(kind, 0) + 1
            outermost.append(elements[element_id])
    # Outermost matches never contain one another, so no decompose touches freed memory.
    for element in outermost:
        element.decompose()
    return removed


def strip_markup_noise(node: LexborNode, selectors: MarkupSelectors) -> dict[str, int]:
    """Layer 1: remove jammer elements, display:none elements, ad slots, scripts and styles
    below `node` (never `node` itself). Returns the count removed per kind.

    Only the outermost match of a nested group is removed and counted, under the first kind
    it matches in the order above.
    """
    return _remove_outermost(node, _markup_noise_kinds(node, selectors))


def remove_elements(node: LexborNode, selectors: tuple[str, ...] | list[str]) -> int:
    """Remove every element below `node` matching any of `selectors` (nested matches once)."""
    if not selectors:
        return 0
    return sum(_remove_outermost(node, [("match", node.css(", ".join(selectors)))]).values())


# --- text layout --------------------------------------------------------------------------
BLOCK_TAGS = frozenset(
    "address article aside blockquote caption center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre section summary table tbody td tfoot "
    "th thead tr ul".split()
)
_NO_TEXT_TAGS = frozenset("script style noscript template head title textarea select option iframe object".split())
_HTML_SPACE = "\t\n\f\r"


def _is_blank_text(node: LexborNode) -> bool:
    return node.is_comment_node or (node.is_text_node and not (node.text_content or "").strip())


def _breaks_line(node: LexborNode | None) -> bool:
    return node is not None and node.is_element_node and (node.tag == "br" or node.tag in BLOCK_TAGS)


def _at_line_edge(text_node: LexborNode, root: LexborNode, *, forward: bool) -> bool:
    """True when nothing but white space stands between the text node and a line edge (a <br>,
    a block boundary, or the root's own start or end), on the side given by `forward`."""
    node = text_node
    while True:
        sibling = node.next if forward else node.prev
        while sibling is not None and _is_blank_text(sibling):
            sibling = sibling.next if forward else sibling.prev
        if sibling is not None:
            return _breaks_line(sibling)
        parent = node.parent
        if parent is None or parent.mem_id == root.mem_id or parent.tag in BLOCK_TAGS:
            return True
        node = parent


def _text_nodes(node: LexborNode) -> list[LexborNode]:
    return [n for n in node.traverse(include_text=True) if n.is_text_node]


def _replace_text(text_node: LexborNode, value: str) -> None:
    if value:
        text_node.replace_with(value)
    else:
        text_node.decompose()


def _layout_lines(node: LexborNode) -> list[str]:
    """The text below `node` as raw lines: a hard break at each <br> and at newlines inside
    <pre>, a soft break (only after text) at block edges. White space is left as found."""
    lines: list[str] = []
    current: list[str] = []
    has_text = False  # the current line holds more than white space: a soft break ends it
    # (children left to lay out, inside <pre>, ends a block); a stack, since posts can nest
    # very deep. Breaks are written out inline: this loop runs for every node of every post.
    stack = [(node.iter(include_text=True), False, False)]
    while stack:
        children, in_pre, ends_block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if ends_block and has_text:
                lines.append("".join(current))
                current.clear()
                has_text = False
        elif child.is_text_node:
            value = child.text_content or ""
            if in_pre:
                first, *rest = value.split("\n")
                current.append(first)
                for piece in rest:
                    lines.append("".join(current))
                    current.clear()
                    current.append(piece)
                    has_text = False
            else:
                # str.replace runs at C speed; re.sub and str.translate are slower here.
                current.append(_html_spaces_as_spaces(value))
            if not has_text:
                has_text = bool(value) and not value.isspace()
        elif child.is_element_node:
            tag = child.tag
            if tag in _NO_TEXT_TAGS:
                continue
            if tag == "br":
                lines.append("".join(current))
                current.clear()
                has_text = False
                continue
            is_block = tag in BLOCK_TAGS
            if is_block and has_text:
                lines.append("".join(current))
                current.clear()
                has_text = False
            # A row of columns is one line, however its cells break inside; a row of one cell
            # is laid out as any block is.
            if tag == "tr" and sum(c.is_element_node and c.tag not in _NO_TEXT_TAGS for c in child.iter()) > 1:
                row = _layout_row(child)
                if row is not None:
                    lines.append(row)
                continue
            stack.append((child.iter(include_text=True), in_pre or tag == "pre", is_block))
    if current:
        lines.append("".join(current))
    return lines


# Stands between the cells of a table row's line until the text is finished, where it becomes
# a tab: white space normalisation would collapse a tab. A lone surrogate, because nothing the
# HTML parser gives can hold one: its text is decoded UTF-8, which cannot encode a surrogate
# (a character reference to one reads as U+FFFD, selectolax drops one in its input). NUL is
# PREFORMATTED_LINE's, and the parser leaves every other control character in text as written.
# Its low byte is not 0: in two-byte (CJK) text CPython's `in` finds such a character with
# memchr on that byte, about 35 times faster than the plain loop it runs for one ending in 0.
TABLE_CELL_BREAK = "\udfff"
# Stands where a line breaks inside a cell of a row of columns (a <br>, a block's edge): a
# line edge to the jammer filter, as it was before rows became one line, and a space in the
# finished text. Another lone surrogate, for the same reasons.
CELL_LINE_BREAK = "\udffe"


def _row_line(cells: list[str]) -> str | None:
    """The raw line of a row whose cells' texts (CELL_LINE_BREAK where a line breaks inside
    one) are `cells`: joined by TABLE_CELL_BREAK. None when no cell holds text."""
    if not any(cell.replace(CELL_LINE_BREAK, "").strip() for cell in cells):
        return None
    return TABLE_CELL_BREAK.join(cells)


def _layout_row(row: LexborNode) -> str | None:
    """A table row as one raw line (_row_line), each cell's own breaks (<br>, blocks, a nested
    table's rows and cells) marked CELL_LINE_BREAK. None when no cell holds text. A walk of its
    own, with no recursion: tables nest as deep as a post."""
    cells: list[str] = []
    # The parser lets only cells into a row (text and other elements go before the table),
    # and comments, scripts or templates, which hold no text (iter() yields comments too).
    for cell in row.iter():
        if not cell.is_element_node or cell.tag in _NO_TEXT_TAGS:
            continue
        pieces: list[str] = []
        stack = [(cell.iter(include_text=True), False)]  # (children left, breaks a line at its end)
        while stack:
            children, ends_block = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if ends_block:
                    pieces.append(CELL_LINE_BREAK)
            elif child.is_text_node:
                value = child.text_content or ""
                # A code line inside a cell is flattened like the rest: its mark goes.
                pieces.append(_html_spaces_as_spaces(value.replace(PREFORMATTED_LINE, "")))
            elif child.is_element_node and child.tag not in _NO_TEXT_TAGS:
                breaks = _breaks_line(child)
                if breaks:
                    pieces.append(CELL_LINE_BREAK)
                stack.append((child.iter(include_text=True), breaks))
        cells.append("".join(pieces))
    return _row_line(cells)


# Opens a line of code, whose white space is its meaning (indentation): the line keeps it.
# The HTML parser never leaves a NUL in text, so no page can write one.
PREFORMATTED_LINE = "\x00"


def mark_preformatted(lines: Iterable[LexborNode]) -> None:
    """Mark each element of `lines` (an engine's code lines) as a line whose white space the
    text keeps; clean_node_text takes the marks out again."""
    for line in lines:
        first = line.child
        if first is not None:
            first.insert_before(PREFORMATTED_LINE)
        else:
            line.insert_child(PREFORMATTED_LINE)


def _finish_line(line: str) -> str:
    if TABLE_CELL_BREAK in line:
        return _finish_row(line)
    # White space before the mark is the markup's, not the code's (Discuz writes "<br />\r<li>").
    before, mark, code = line.partition(PREFORMATTED_LINE)
    if mark and not before.strip():
        return mark + code.replace("\xa0", " ").rstrip()
    return " ".join(line.split())


def _finish_row(line: str) -> str:
    cells = [" ".join(cell.replace(CELL_LINE_BREAK, " ").split()) for cell in line.split(TABLE_CELL_BREAK)]
    # Empty cells before a filled one keep its column; trailing ones place nothing in any
    # column and would end the line in invisible tabs (no other line ends in white space):
    # they go. A leading or middle one stays.
    while cells and not cells[-1]:
        cells.pop()
    return TABLE_CELL_BREAK.join(cells)


def _finish_text(text: str, *, marked: bool = True) -> str:
    """Normalise white space per line of `text` (as normalise_whitespace), collapse runs of
    blank lines into one, trim blank edges. A line marked PREFORMATTED_LINE keeps its white
    space but the trailing, its no-break spaces (how forums write code's spaces) as spaces,
    and its mark. A table row's line is normalised per cell and keeps its TABLE_CELL_BREAKs
    (_unmark turns them into tabs), less those of trailing empty cells. marked=False: the
    caller knows `text` holds no PREFORMATTED_LINE (looking for a NUL in CJK text costs about
    3 us a post: CPython's fast search skips characters by their low byte, and NUL's is 0)."""
    # str methods, not re: split() splits on exactly the characters \s matches, and both
    # run several times faster than a pattern over CJK text.
    if (marked and PREFORMATTED_LINE in text) or TABLE_CELL_BREAK in text:
        lines = [_finish_line(line) for line in text.split("\n")]
    else:
        lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(lines)
    if "" in lines:  # only blank lines make runs of line feeds to collapse
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n")


def _unmark(text: str, *, marked: bool = True) -> str:
    """Finished text as a reader gets it: code lines' marks out, cells apart by tabs. Last:
    any white space normalisation after this would collapse the tabs. marked: as _finish_text."""
    if marked and PREFORMATTED_LINE in text:
        text = text.replace(PREFORMATTED_LINE, "").strip("\n")
    if TABLE_CELL_BREAK in text:
        text = text.replace(TABLE_CELL_BREAK, "\t")
    if CELL_LINE_BREAK in text:  # _finish_row leaves none: never let a surrogate out
        text = text.replace(CELL_LINE_BREAK, " ")
    return text


def html_to_text(node: LexborNode) -> str:
    """Text of `node` with line breaks at <br> and block edges, white space normalised per
    line (U+00A0 and U+3000 included), runs of blank lines collapsed to one. A table row is
    one line, its cells apart by tabs."""
    return _unmark(_finish_text("\n".join(_layout_lines(node))))


# --- layer 2: jammer text inside the tree ---------------------------------------------------
_LEADING_HTML_SPACE = re.compile(rf"^[{_HTML_SPACE}]*")
_TRAILING_HTML_SPACE = re.compile(rf"[{_HTML_SPACE}]*$")
_SHORTEST_RUN_CHARS = 3 * config.JAMMER_MIN_UNITS


def _strip_edge_runs(value: str, *, at_start: bool, at_end: bool) -> tuple[str, int]:
    """Remove a jammer run at the line-start and/or line-end side of a text node's value,
    keeping the HTML white space (line feeds from the source) around it."""
    lead = _LEADING_HTML_SPACE.match(value).group()
    trail = _TRAILING_HTML_SPACE.search(value[len(lead):]).group()
    core = value[len(lead) : len(value) - len(trail)]
    leading = trailing = 0
    if at_start:
        core, leading = _strip_leading_run(core)
    if at_end:
        core, trailing = _strip_trailing_run(core)
    return lead + core + trail, leading + trailing


def strip_jammer_nodes(node: LexborNode) -> int:
    """Layer 2 inside a tree: remove jammer runs from text nodes that touch a line edge, so a
    run that arrived without its wrapper element is still caught. Returns the runs removed."""
    node.merge_text_nodes()  # text split around removed wrappers becomes one node again
    if not could_hold_jammer(node.text()):  # a run inside a text node is a run in the whole text
        return 0
    removed = 0
    for text_node in _text_nodes(node):
        value = text_node.text_content or ""
        if len(value.strip()) < _SHORTEST_RUN_CHARS or not could_hold_jammer(value):
            continue
        at_start = _at_line_edge(text_node, node, forward=False)
        at_end = _at_line_edge(text_node, node, forward=True)
        if not (at_start or at_end):
            continue
        cleaned, n = _strip_edge_runs(value, at_start=at_start, at_end=at_end)
        if n:
            removed += n
            _replace_text(text_node, cleaned)
    return removed


# --- layers 3-4 inside the tree and on text -------------------------------------------------
def remove_phrases_in_tree(node: LexborNode, phrases: list[str] | tuple[str, ...]) -> int:
    """Remove each phrase wherever it stands whole inside one text node below `node`."""
    if not any(phrases):
        return 0
    removed = 0
    for text_node in _text_nodes(node):
        value = text_node.text_content or ""
        cleaned, n = remove_phrases(value, phrases)
        if n:
            removed += n
            _replace_text(text_node, cleaned)
    return removed


def clean_node_text(node: LexborNode, noise: NoiseRules) -> tuple[str, dict[str, int]]:
    """The cleaned text of `node`: layout as html_to_text, then jammer runs at line edges
    (layer 2), site phrases (3) and confirmed learned phrases (4) removed. Returns the text
    and the counts removed by each text filter."""
    return _clean_layout("\n".join(_layout_lines(node)), noise)


def _clean_layout(raw: str, noise: NoiseRules, *, may_hold_jammer: bool = True,
                  marked: bool = True) -> tuple[str, dict[str, int]]:
    """clean_node_text's filters on the raw lines of a layout, joined by line feeds.
    may_hold_jammer=False: the caller found no jammer run in `raw` (could_hold_jammer);
    marked=False: no line of `raw` is marked PREFORMATTED_LINE (see _finish_text)."""
    counts: dict[str, int] = {}
    raw, runs = strip_jammer_text(raw) if may_hold_jammer else (raw, 0)
    add_counts(counts, NOISE_JAMMER_TEXT, runs)
    return _finish_phrases(_finish_text(raw, marked=marked), noise, counts, marked=marked)


def _finish_phrases(text: str, noise: NoiseRules, counts: dict[str, int], *,
                    marked: bool = True) -> tuple[str, dict[str, int]]:
    """_clean_layout's last steps on finished text: phrases out (counted into `counts`), then
    the text as a reader gets it."""
    text, site = remove_phrases(text, noise.phrases)
    add_counts(counts, NOISE_SITE_PHRASES, site)
    text, learned = remove_phrases(text, noise.learned)
    add_counts(counts, NOISE_LEARNED_PHRASES, learned)
    text = _finish_text(text, marked=marked) if site or learned else text
    return _unmark(text, marked=marked), counts


def clean_tree_phrases(node: LexborNode, noise: NoiseRules) -> dict[str, int]:
    """Layers 3-4 on the text nodes of a tree (for the HTML rendering of a post)."""
    counts: dict[str, int] = {}
    add_counts(counts, NOISE_SITE_PHRASES, remove_phrases_in_tree(node, noise.phrases))
    add_counts(counts, NOISE_LEARNED_PHRASES, remove_phrases_in_tree(node, noise.learned))
    return counts


def merge_counts(total: dict[str, int], more: dict[str, int]) -> None:
    """Add every count of `more` into `total`."""
    for name, n in more.items():
        add_counts(total, name, n)


# --- sanitising ---------------------------------------------------------------------------
ALLOWED_TAGS = frozenset(
    "p br div span b strong i em u s strike blockquote ul ol li pre code a img table thead tbody tr td th "
    "h1 h2 h3 h4 h5 h6 hr".split()
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "data-from"},  # data-from: PLAYER_LINK_MARK's only
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# Dropped with everything inside them, so no script text or fallback markup leaks out as text.
DROPPED_WITH_CONTENT = frozenset(
    "script style noscript template iframe object embed applet svg math textarea select title xmp noembed "
    "noframes frameset frame".split()
)
ALLOWED_URL_SCHEMES = frozenset({"http", "https"})
# What resource forums post besides web links: eMule, BitTorrent and download-manager links
# (Xunlei's thunder://, QQ's qqdl://, FlashGet) and FTP. A link's target is the post's content
# (a file's hash); a browser hands these schemes to an outside program, none runs script.
# Kept on links only: an image's source stays http(s).
DOWNLOAD_LINK_SCHEMES = frozenset({"ed2k", "magnet", "thunder", "qqdl", "flashget", "ftp"})
LINK_REL = "nofollow noopener noreferrer"
# What marks the link an engine writes for the file a player played (the player, a script or
# an embed, is never kept): the archive tells it from the post's own links by it. An attribute
# no forum writes on a link, so the allowlist changes no other link's HTML; storage.archive
# knows it by the same form.
PLAYER_LINK_ATTRIBUTE, PLAYER_LINK_VALUE = "data-from", "player"
PLAYER_LINK_MARK = f' {PLAYER_LINK_ATTRIBUTE}="{PLAYER_LINK_VALUE}"'
# Forums lazy-load images: the real file is in one of these attributes, src holds a placeholder.
IMAGE_SOURCE_ATTRIBUTES = ("zoomfile", "file", "data-src", "src")
_URL_ATTRIBUTES = frozenset({"href", "src"})


_WEB_URL_PREFIXES = ("http://", "https://")
_DOWNLOAD_LINK_PREFIXES = tuple(f"{scheme}:" for scheme in sorted(DOWNLOAD_LINK_SCHEMES))
_LINK_URL_PREFIXES = _WEB_URL_PREFIXES + _DOWNLOAD_LINK_PREFIXES


def _keep_http_urls(tag: str, attribute: str, value: str) -> str | None:
    # Defence in depth behind url_schemes: every URL left is absolute http(s), or a download
    # link's scheme on a link. The player mark is kept as the engine writes it, nothing else.
    if attribute == PLAYER_LINK_ATTRIBUTE:
        return value if value == PLAYER_LINK_VALUE else None
    if attribute in _URL_ATTRIBUTES and not value.strip().lower().startswith(
            _LINK_URL_PREFIXES if (tag, attribute) == ("a", "href") else _WEB_URL_PREFIXES):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    # "*": nothing on every tag (nh3 would otherwise allow lang and title everywhere).
    attributes={"*": set(), **{tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}},
    attribute_filter=_keep_http_urls,
    url_schemes=set(ALLOWED_URL_SCHEMES | DOWNLOAD_LINK_SCHEMES),
    link_rel=LINK_REL,
    url_relative="deny",
    strip_comments=True,
)


def absolute_url(url: str | None, base_url: str) -> str | None:
    """`url` resolved against `base_url`; None for an empty or unparsable URL."""
    url = (url or "").strip()
    if not url:
        return None
    try:
        return urljoin(base_url, url)
    except ValueError:  # e.g. a malformed IPv6 host: treat as no URL
        return None


# What a download link keeps as written: the unreserved characters, RFC 3986's reserved ones
# but the brackets, and '%' (what is encoded already). The rest is percent-encoded as UTF-8:
# eMule's pipes, which no URL parser reads in a host (ed2k://|file|NAME|SIZE|HASH|/), a file
# name's spaces, Chinese and [site] tags (brackets read as an IPv6 host). eMule and the
# download managers read such links encoded.
_DOWNLOAD_LINK_SAFE = "!$&'()*+,;=:@/?#%~-._"


def link_url(href: str | None, base_url: str) -> str | None:
    """A link's target as the sanitiser keeps it: a web link made absolute, a download link
    percent-encoded where no URL parser would read it."""
    value = (href or "").strip()
    if value[:9].lower().startswith(_DOWNLOAD_LINK_PREFIXES):
        scheme, rest = value.split(":", 1)
        return f"{scheme.lower()}:{quote(rest, safe=_DOWNLOAD_LINK_SAFE)}"
    return absolute_url(href, base_url)


def _resolve_urls(node: LexborNode, base_url: str) -> None:
    """Make the links and images below `node` absolute, in place; an image takes its real
    file from its lazy-load attribute. URLs that cannot be resolved are removed."""
    for element in node.css("img, a"):
        attributes = element.attributes
        if element.tag == "img":
            source = next((attributes[a] for a in IMAGE_SOURCE_ATTRIBUTES if attributes.get(a)), None)
            url = absolute_url(source, base_url)
            if url:
                element.attrs["src"] = url
            elif "src" in attributes:
                del element.attrs["src"]
            continue
        href = attributes.get("href")
        if href is None:  # no link, or a namespaced one (svg xlink:href) the allowlist drops
            continue
        url = link_url(href, base_url)
        if url:
            element.attrs["href"] = url
        else:
            del element.attrs["href"]


# At the start of a page's body, the HTML parser moves these (and comments) into <head>.
_HEAD_CAPABLE_TAGS = frozenset(
    "base basefont bgsound head link meta noframes noscript script style template title".split()
)
_LEADING_TAG_NAME = re.compile(r"<([a-zA-Z][^\s/>]*)")
_ASCII_WHITESPACE = " \t\n\f\r"


def _starts_body(html: str) -> bool:
    """True when a parser reading `html` as a page puts all of it in <body>: it opens with
    text or an element that cannot stand in <head> (no white space before)."""
    if not html.startswith("<"):
        return True
    match = _LEADING_TAG_NAME.match(html)
    return match is not None and match[1].lower() not in _HEAD_CAPABLE_TAGS


# The serialiser writes the text inside these elements as it is, unescaped (HTML's
# serialisation algorithm); a <template>'s children live in its content. Their inner HTML is
# never taken as escaped text.
_UNESCAPED_TEXT_PARENTS = frozenset("style script xmp iframe noembed noframes plaintext noscript template".split())


def _is_escaped_text_and_breaks(tag: str | None, inner_html: str) -> bool:
    """True when `inner_html`, the serialisation of the children of a `tag` element, is escaped
    text and bare <br> only: then every "<" in it opens a "<br>" (text escapes its own "<")."""
    return tag not in _UNESCAPED_TEXT_PARENTS and inner_html.count("<") == inner_html.count("<br>")


def _parser_keeps(html: str) -> bool:
    """False when the sanitiser's own parse would change `html` however clean: it turns a CR
    into LF and drops a leading byte order mark."""
    return "\r" not in html and not html.startswith("\ufeff")


def _is_sanitised_as_it_is(node: LexborNode, html: str) -> bool:
    # Escaped text and bare <br> are already what the sanitiser would give, unless its parser
    # changes them. Many posts are just that.
    return _parser_keeps(html) and _is_escaped_text_and_breaks(node.tag, html)


def sanitize_node(node: LexborNode, base_url: str) -> str:
    """The content of `node` as HTML safe to render: what sanitize_html gives for the same
    content, read from the tree already parsed (`node` itself is left unchanged)."""
    resolved = node
    if node.css_first("img, a") is not None:  # only links and images need a copy to rewrite
        resolved = node.clone()
        _resolve_urls(resolved, base_url)
    # sanitize_html's page body never starts with white space: trim it the same way.
    html = (resolved.inner_html or "").lstrip(_ASCII_WHITESPACE)
    if _is_sanitised_as_it_is(resolved, html):
        return html
    if _starts_body(html):
        return _CLEANER.clean(html)
    # Content opening with a comment, a style or the like: parse it as a page, as it is read.
    return sanitize_html(node.inner_html or "", base_url)


def _unescape_text(escaped: str) -> str:
    # The serialiser escapes exactly these four in text (HTML's "escaping a string");
    # "&amp;" goes last, so "&amp;lt;" comes back as "&lt;".
    if "&" not in escaped:
        return escaped
    return escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\xa0").replace("&amp;", "&")


def _escape_text(text: str) -> str:
    # What the serialiser writes for a text node outside the raw-text elements.
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


_BREAK_MARK = "\x00"


def _html_spaces_as_spaces(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("\f", " ")


def clean_plain_node(node: LexborNode, noise: NoiseRules) -> tuple[str, str, dict[str, int]] | None:
    """Layers 2-4, sanitising and text of a node of nothing but text and bare <br>, from its
    one serialisation instead of walks of its nodes in Python (most posts are such nodes).

    Returns (html, text, counts): what strip_jammer_nodes, clean_tree_phrases, sanitize_node
    and clean_node_text give, run in that order, with their counts added in that order.
    None for any other node, and when the sanitiser would still change the HTML. `node` is
    left unchanged.
    """
    return _clean_plain_html(node.inner_html or "", node.tag, noise)


# An element holding nothing but text, as the serialiser writes it: tag, attributes, text.
_TEXT_ONLY_ELEMENT = re.compile(r'<([a-z][^\s/>]*)((?: [^\s"\'>/=]+="[^"]*")*)>[^<]*</\1>')
_STYLE_ONLY = re.compile(r' style="([^"]*)"')


def _unescape_attribute(value: str) -> str:
    # The serialiser's escapes in an attribute value; "&amp;" last, as in _unescape_text.
    if "&" not in value:
        return value
    return (value.replace("&quot;", '"').replace("&nbsp;", "\xa0").replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&"))


def clean_plain_body(node: LexborNode, selectors: MarkupSelectors,
                     noise: NoiseRules) -> tuple[str, str, dict[str, int]] | None:
    """strip_markup_noise then clean_plain_node on a copy of `node`, without the copy or the
    tree walks: from the one serialisation of its children, when they are text, bare <br>
    and noise elements holding only text (a Discuz post of plain text: its jammer <font>s
    and display:none <span>s). Returns what those two give, their counts merged in the same
    order; None for any other node (the caller then takes the tree path). `node` is left
    unchanged.

    Noise is recognised on its serialised form, narrower than the selectors: a jammer
    element is selectors.jammer_start_tag exactly (none without one), a hidden one has a
    style attribute and no other. Anything else is left in place, and then the node is not
    plain.
    """
    inner_html = node.inner_html or ""
    plainest = _cut_plainest_noise(inner_html, selectors)
    remaining, jammer, hidden = plainest if plainest is not None else _cut_noise(inner_html, selectors)
    plain = _clean_plain_html(remaining, node.tag, noise)
    if plain is None:
        return None
    html, text, text_counts = plain
    counts: dict[str, int] = {}
    # strip_markup_noise's order: hidden elements before jammer elements.
    add_counts(counts, NOISE_HIDDEN_ELEMENTS, hidden)
    add_counts(counts, NOISE_JAMMER_ELEMENTS, jammer)
    merge_counts(counts, text_counts)
    return html, text, counts


def _cut_noise(inner_html: str, selectors: MarkupSelectors) -> tuple[str, int, int]:
    """`inner_html` without its text-only jammer and hidden elements, and how many of each
    were cut (clean_plain_body's rules)."""
    jammer = hidden = 0

    def drop_noise(match: re.Match) -> str:
        nonlocal jammer, hidden
        element = match[0]
        if selectors.jammer_start_tag and element.startswith(selectors.jammer_start_tag):
            jammer += 1
            return ""
        style = _STYLE_ONLY.fullmatch(match[2])
        if style is not None and _DISPLAY_NONE.search(_unescape_attribute(style[1])):
            hidden += 1
            return ""
        return element

    remaining = _TEXT_ONLY_ELEMENT.sub(drop_noise, inner_html)
    return remaining, jammer, hidden


@functools.lru_cache(maxsize=8)
def _plainest_noise(jammer_start_tag: str, hidden_start_tag: str) -> tuple[re.Pattern, str, str]:
    """A pattern matching a jammer element and a hidden one, each holding only text, written
    with exactly these start tags, and the two end tags. Raises ValueError for a start tag
    _cut_noise would not cut, written so."""
    alternatives, end_tags = [], []
    for start_tag, kind in ((jammer_start_tag, "jammer"), (hidden_start_tag, "hidden")):
        name = _LEADING_TAG_NAME.match(start_tag)
        element = _TEXT_ONLY_ELEMENT.fullmatch(f"{start_tag}</{name[1]}>") if name else None
        style = _STYLE_ONLY.fullmatch(element[2]) if element else None
        if element is None or (kind == "hidden" and not (style and _DISPLAY_NONE.search(_unescape_attribute(style[1])))):
            raise ValueError(f"{start_tag!r} is not how the serialiser writes a {kind} element")
        alternatives.append(f"{re.escape(start_tag)}[^<]*</{re.escape(name[1])}>")
        end_tags.append(f"</{name[1]}>")
    return re.compile("|".join(alternatives)), end_tags[0], end_tags[1]


def _cut_plainest_noise(inner_html: str, selectors: MarkupSelectors) -> tuple[str, int, int] | None:
    """python_cut_plainest_noise, at C speed where the install built scraper/_plaintext.c (and
    the start tags are ASCII, as the serialiser writes them)."""
    jammer_start, hidden_start = selectors.jammer_start_tag, selectors.hidden_start_tag
    if not (jammer_start and hidden_start):
        return None
    _, jammer_end, hidden_end = _plainest_noise(jammer_start, hidden_start)
    if _cut_plainest_noise_c is not None and jammer_start.isascii() and hidden_start.isascii():
        return _cut_plainest_noise_c(inner_html, jammer_start, jammer_end, hidden_start, hidden_end)
    return python_cut_plainest_noise(inner_html, selectors)


def python_cut_plainest_noise(inner_html: str, selectors: MarkupSelectors) -> tuple[str, int, int] | None:
    """What _cut_noise gives when `inner_html` holds only text, <br> and the selectors'
    plainest noise elements (their exact start tags, text inside), from one regex pass
    instead of a Python call per element; None for anything else (most Discuz posts are
    such: a jammer <font> and a hidden <span> on every few lines).

    The definition of scraper/_plaintext.c's cut_plainest_noise."""
    if not (selectors.jammer_start_tag and selectors.hidden_start_tag):
        return None
    pattern, _, _ = _plainest_noise(selectors.jammer_start_tag, selectors.hidden_start_tag)
    remaining, cut = pattern.subn("", inner_html)
    if not _is_escaped_text_and_breaks(None, remaining):
        return None  # other markup: _cut_noise decides what of it is noise
    # Every "<" of inner_html opened a <br> or a cut element, and a cut element holds no "<":
    # each jammer start tag in it began one cut element.
    jammer = inner_html.count(selectors.jammer_start_tag)
    return remaining, jammer, cut - jammer


def python_plain_layout(inner_html: str) -> str | None:
    """The finished text of `inner_html`, escaped text and bare <br> that holds no jammer run
    (the common post): what _clean_plain_html lays out and finishes when no jammer run or
    phrase is removed. None for anything else: other markup, a NUL or a TABLE_CELL_BREAK in
    the text (marks of ours), or text that could hold a jammer run.

    The definition of scraper/_plaintext.c's plain_layout, which plain_layout prefers."""
    if not _is_escaped_text_and_breaks(None, inner_html) or _BREAK_MARK in inner_html:
        return None
    spaced = _html_spaces_as_spaces(_marked_text(inner_html))
    if TABLE_CELL_BREAK in spaced or could_hold_jammer(spaced):
        return None
    return _finish_text(_break_lines(spaced), marked=False)


def _marked_text(inner_html: str) -> str:
    """The text of escaped text and bare <br>, a _BREAK_MARK where each <br> stood."""
    return _unescape_text(inner_html.replace("<br>", _BREAK_MARK))


def _break_lines(spaced: str) -> str:
    """Marked text as raw lines: a line feed at each mark, but a last one (a break at the end
    starts no line of its own)."""
    if spaced.endswith(_BREAK_MARK):
        spaced = spaced[: -len(_BREAK_MARK)]
    return spaced.replace(_BREAK_MARK, "\n")


def plain_layout(inner_html: str) -> str | None:
    """python_plain_layout, at C speed where the install built scraper/_plaintext.c."""
    if _plain_layout_c is not None:
        return _plain_layout_c(inner_html, config.JAMMER_MIN_UNITS)
    return python_plain_layout(inner_html)


def _phrase_in_text(inner_html: str, noise: NoiseRules) -> bool:
    """Whether a site or learned phrase stands in the text of `inner_html` (escaped text and
    bare <br>), where _clean_plain_html would remove it from a text node."""
    phrases = [phrase for phrase in (*noise.phrases, *noise.learned) if phrase]
    if not phrases:
        return False
    text = _marked_text(inner_html)
    return any(phrase in text for phrase in phrases)


def _clean_plain_html(inner_html: str, tag: str | None, noise: NoiseRules) -> tuple[str, str, dict[str, int]] | None:
    """clean_plain_node on the serialisation of the children of a `tag` element."""
    if tag in _UNESCAPED_TEXT_PARENTS:
        return None
    # Most posts: nothing removed from the text nodes, so the HTML is the serialisation and
    # the text its layout, finished in one call.
    finished = plain_layout(inner_html)
    if finished is not None and not _phrase_in_text(inner_html, noise):
        html = inner_html.lstrip(_ASCII_WHITESPACE)
        if not _parser_keeps(html):
            return None
        text, counts = _finish_phrases(finished, noise, {}, marked=False)
        return html, text, counts
    # A NUL marks where each <br> stood: the parser never leaves one in the text.
    if not _is_escaped_text_and_breaks(tag, inner_html) or _BREAK_MARK in inner_html:
        return None
    # Between two marks stands one text node once adjacent ones are merged, or none (""); it
    # touches a line edge on both sides, as _at_line_edge finds. Whole-string passes run at
    # C speed; the per-text-node steps below run only where a text holds jammer or phrases.
    text = _marked_text(inner_html)
    values: list[str] | None = None  # the text nodes, split out once one changes
    counts: dict[str, int] = {}
    runs = 0
    # One check serves the text nodes and the layout: a run in a text node is a run in the
    # whole, and one in the whole is one in its layout, where HTML white space (outside the
    # jammer alphabet, like the break mark) turns into spaces that may complete a run.
    spaced = _html_spaces_as_spaces(text)
    may_hold_jammer = could_hold_jammer(spaced)
    if may_hold_jammer:
        values = text.split(_BREAK_MARK)
        for i, value in enumerate(values):
            if len(value.strip()) >= _SHORTEST_RUN_CHARS and could_hold_jammer(value):
                values[i], n = _strip_edge_runs(value, at_start=True, at_end=True)
                runs += n
    add_counts(counts, NOISE_JAMMER_TEXT, runs)
    for kind, phrases in ((NOISE_SITE_PHRASES, noise.phrases), (NOISE_LEARNED_PHRASES, noise.learned)):
        removed = 0
        if any(phrases):
            values = values if values is not None else text.split(_BREAK_MARK)
            for i, value in enumerate(values):
                values[i], n = remove_phrases(value, phrases)
                removed += n
        add_counts(counts, kind, removed)
    if counts:
        text = _BREAK_MARK.join(values)
        serialised = _escape_text(text).replace(_BREAK_MARK, "<br>")
    else:
        serialised = inner_html
    html = serialised.lstrip(_ASCII_WHITESPACE)
    if not _parser_keeps(html):
        return None
    if counts:  # the text changed: so did its layout, and a removal may have joined a run
        spaced = _html_spaces_as_spaces(text)
        may_hold_jammer = True
    layout = _break_lines(spaced)
    # Refused above if it held a NUL: no line is marked (marks go into trees, not serialisations).
    text, text_counts = _clean_layout(layout, noise, may_hold_jammer=may_hold_jammer, marked=False)
    merge_counts(counts, text_counts)
    return html, text, counts


def sanitize_html(html: str, base_url: str) -> str:
    """HTML safe to render: an explicit allowlist of tags and attributes (nh3), links marked
    nofollow, and only absolute http(s) URLs, relative ones first resolved against
    `base_url` (an image's real file taken from its lazy-load attribute, e.g. zoomfile)."""
    body = parse_html(html).body
    if body is None:
        return ""
    _resolve_urls(body, base_url)
    return _CLEANER.clean(body.inner_html)


# --- learned phrases ----------------------------------------------------------------------
def _frequent(counts: Counter[str], min_posts: int) -> dict[str, int]:
    return {gram: n for gram, n in counts.items() if n >= min_posts}


def _worth_proposing(phrase: str, min_chars: int) -> bool:
    # A run of punctuation or spaces ("……", "------") recurs everywhere and says nothing.
    return len(phrase) >= min_chars and sum(ch.isalnum() for ch in phrase) >= 2


def learn_phrases(
    texts: list[str],
    *,
    min_posts: int = config.LEARNED_PHRASE_MIN_POSTS,
    min_chars: int = config.LEARNED_PHRASE_MIN_CHARS,
    max_chars: int = config.LEARNED_PHRASE_MAX_CHARS,
) -> list[tuple[str, int]]:
    """Propose watermark phrases: maximal substrings of `min_chars` to `max_chars` characters
    that occur in at least `min_posts` distinct posts, not always at the same offset.

    Returns (phrase, number of posts) pairs, most widespread first. A phrase that is part of
    a longer proposed phrase is not proposed on its own; one longer than `max_chars` comes
    out as overlapping pieces of `max_chars`. Runs in time linear in the total text: n-grams
    are counted once at `min_chars`, then grown one character at a time only where they
    were frequent.
    """
    if min_chars < 1 or max_chars < min_chars or min_posts < 1:
        raise ValueError("need 1 <= min_chars <= max_chars and min_posts >= 1")
    posts = [normalise_whitespace(t) for t in texts if t]
    size = min_chars
    counts: Counter[str] = Counter()
    for post in posts:
        counts.update({post[i : i + size] for i in range(len(post) - size + 1)})
    frequent = _frequent(counts, min_posts)
    # Per post, the start offsets of frequent grams of the current size.
    starts = [[i for i in range(len(post) - size + 1) if post[i : i + size] in frequent] for post in posts]
    levels: dict[int, dict[str, int]] = {size: frequent}
    while frequent and size < max_chars:
        size += 1
        counts = Counter()
        grown_starts = []
        for post, offsets in zip(posts, starts):
            present = set(offsets)
            # A gram one longer can be frequent only if both its shorter halves are.
            grown = [i for i in offsets if i + 1 in present]
            grown_starts.append(grown)
            counts.update({post[i : i + size] for i in grown})
        frequent = _frequent(counts, min_posts)
        starts = [[i for i in grown if post[i : i + size] in frequent] for post, grown in zip(posts, grown_starts)]
        levels[size] = frequent
    proposals: dict[str, int] = {}
    inside_longer: set[str] = set()  # grams of the current size that a frequent longer gram contains
    for size in sorted(levels, reverse=True):
        for gram, n in levels[size].items():
            phrase = gram.strip()
            if gram in inside_longer or not _worth_proposing(phrase, min_chars):
                continue
            if _varies_in_position(phrase, posts):
                proposals[phrase] = max(n, proposals.get(phrase, 0))
        inside_longer = {part for gram in levels[size] for part in (gram[:-1], gram[1:])}
    return sorted(proposals.items(), key=lambda item: (-item[1], -len(item[0]), item[0]))


def _varies_in_position(phrase: str, posts: list[str]) -> bool:
    # A watermark lands at random offsets; text every post starts with is a template.
    offsets = {post.find(phrase) for post in posts if phrase in post}
    return len(offsets) >= 2


__all__ = [
    "JAMMER_UNIT",
    "MarkupSelectors",
    "absolute_url",
    "NoiseRules",
    "add_counts",
    "clean_node_text",
    "clean_plain_body",
    "clean_plain_node",
    "clean_tree_phrases",
    "html_to_text",
    "learn_phrases",
    "limit_nesting",
    "merge_counts",
    "normalise_whitespace",
    "parse_html",
    "plain_layout",
    "python_cut_plainest_noise",
    "python_plain_layout",
    "remove_elements",
    "remove_phrases",
    "remove_phrases_in_tree",
    "sanitize_html",
    "sanitize_node",
    "strip_jammer_line",
    "strip_jammer_nodes",
    "strip_jammer_text",
    "strip_markup_noise",
]
