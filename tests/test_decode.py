"""Bytes to text: the charset rules Chinese forums need."""

from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.decode import decode_html

GBK_META = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk" /></head><body>{}</body>'


def test_gbk_page_with_meta_only_and_gb18030_characters_decodes_exactly():
    # 𠮷 (U+20BB7) and € are outside strict GBK: a gbk decoder would lose them.
    text = GBK_META.format("基层党委办公室 𠮷 € 十种意识")
    decoded = decode_html(text.encode("gb18030"), "text/html")
    assert decoded.text == text
    assert decoded.encoding == "gb18030"
    assert decoded.replaced == 0


def test_header_charset_decodes_a_page_without_meta():
    # Only the header names the charset: the site default (UTF-8) must not win.
    text = "<p>基层党委办公室 𠮷 €</p>"
    decoded = decode_html(text.encode("gb18030"), "text/html; charset=gbk")
    assert (decoded.text, decoded.encoding, decoded.replaced) == (text, "gb18030", 0)
    big5 = "<p>辦公室寫作</p>"
    decoded = decode_html(big5.encode("big5"), "text/html; charset=big5", default="gbk")
    assert (decoded.text, decoded.encoding) == (big5, "big5hkscs")  # Big5 labels read as its superset


def test_header_charset_wins_when_meta_agrees():
    body = '<meta charset="utf-8">中文'.encode("utf-8")
    assert decode_html(body, "text/html; charset=UTF-8").encoding == "utf-8"


def test_utf8_bytes_under_a_gbk_label_decode_as_utf8():
    # A page re-saved as UTF-8 that kept charset=gbk in its meta.
    text = GBK_META.format("公文写作百法例讲")
    decoded = decode_html(text.encode("utf-8"), "text/html")
    assert decoded.text == text
    assert decoded.encoding == "utf-8"


def test_meta_beats_a_rewritten_header():
    text = GBK_META.format("老秘网")
    decoded = decode_html(text.encode("gb18030"), "text/html; charset=iso-8859-1")
    assert decoded.text == text


def test_site_default_applies_without_declarations():
    body = "<p>办公室</p>".encode("gb18030")
    decoded = decode_html(body, "text/html", default="gbk")
    assert decoded.text == "<p>办公室</p>"


def test_undecodable_bytes_are_counted():
    body = b'<meta charset="utf-8"><p>ok \xff\xfe bad</p>'
    decoded = decode_html(body, "text/html; charset=utf-8")
    assert decoded.replaced == 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([
    None, "text/html", "text/html; charset=gbk", "text/html; charset=bogus",
    # Labels Python knows as codecs that no page is written in: each raised from decode_html.
    "text/html; charset=undefined", "text/html; charset=base64", "text/html; charset=idna",
    "text/html; charset=rot13", "text/html; charset=unicode_escape",
]))
def test_any_bytes_decode_without_error(body, content_type):
    decoded = decode_html(body, content_type)
    assert isinstance(decoded.text, str)


def test_utf8_under_a_gbk_label_with_one_bad_byte_stays_utf8():
    # A page re-saved as UTF-8 that kept charset=gbk, with one character cut short: read as
    # GB18030 every character would be mojibake; read as UTF-8, one is replaced.
    text = GBK_META.format("基层党委办公室应强化的十种意识" * 200)
    body = text.encode("utf-8")
    cut = body.index("意".encode("utf-8"))
    damaged = body[:cut] + body[cut:cut + 2] + body[cut + 3:]  # one 3-byte character loses a byte
    decoded = decode_html(damaged, "text/html; charset=gbk")
    assert decoded.encoding == "utf-8" and decoded.replaced == 1
    assert decoded.text.count("基层党委办公室") == 200


def test_gbk_text_is_never_taken_for_damaged_utf8():
    text = GBK_META.format("基层党委办公室应强化的十种意识 € 𠮷" * 50)
    decoded = decode_html(text.encode("gb18030"), "text/html")
    assert decoded.encoding == "gb18030" and decoded.text == text


def test_a_latin1_page_with_one_accented_letter_is_not_taken_for_utf8():
    text = "<meta charset=\"iso-8859-1\"><p>café</p>" + "<p>plain</p>" * 100
    decoded = decode_html(text.encode("cp1252"), "text/html")
    assert decoded.text == text and decoded.replaced == 0


def test_a_label_that_names_no_page_charset_is_ignored():
    page = GBK_META.format("论坛").replace("charset=gbk", "charset=undefined").encode("gbk")
    for label in ("undefined", "base64", "hex", "idna", "punycode", "utf-7", "raw_unicode_escape"):
        decoded = decode_html(page, f"text/html; charset={label}", default="gbk")
        assert (decoded.text.count("论坛"), decoded.encoding) == (1, "gb18030"), label


def test_a_meta_that_says_utf16_is_read_as_utf8():
    # Found by reading the bytes as ASCII, the page is no UTF-16: browsers read it as UTF-8.
    page = b'<html><head><meta charset="utf-16"></head><body>&#35770;&#22363; forum</body></html>'
    decoded = decode_html(page)
    assert (decoded.encoding, decoded.text) == ("utf-8", page.decode("ascii"))


def test_gb18030_codes_that_2005_mapped_to_private_use_decode_as_gb18030_2022_characters():
    # Python's codec follows GB 18030-2005: these two-byte codes come out as private-use code
    # points (blank boxes in every font), where GB 18030-2022 and browsers show the characters.
    codes_and_characters = [
        ("a6d9", "\ufe10"), ("a6da", "\ufe12"), ("a6db", "\ufe11"), ("a6dc", "\ufe13"), ("a6dd", "\ufe14"),
        ("a6de", "\ufe15"), ("a6df", "\ufe16"), ("a6ec", "\ufe17"), ("a6ed", "\ufe18"), ("a6f3", "\ufe19"),
        ("fe59", "\u9fb4"), ("fe61", "\u9fb5"), ("fe66", "\u9fb6"), ("fe67", "\u9fb7"), ("fe6d", "\u9fb8"),
        ("fe7e", "\u9fb9"), ("fe90", "\u9fba"), ("fea0", "\u9fbb"),
    ]
    body = b'<meta charset="gbk"><p>' + b"".join(bytes.fromhex(code) for code, _ in codes_and_characters) + b"</p>"
    decoded = decode_html(body, "text/html")
    assert decoded.encoding == "gb18030"
    assert decoded.text.endswith("<p>" + "".join(character for _, character in codes_and_characters) + "</p>")
    # The codes 2022 still maps to private use are left as the codec reads them.
    assert decode_html(b'<meta charset="gbk">' + bytes.fromhex("fe51"), "text/html").text.endswith("\ue816")
    # A UTF-8 page that holds a private-use character keeps it: only gb18030 text is corrected.
    assert decode_html('<meta charset="utf-8">\ue78d'.encode(), "text/html").text.endswith("\ue78d")


def test_a_meta_inside_a_comment_declares_nothing():
    # A template that keeps its old declaration commented out: the page is GBK, and reading
    # it as the comment's UTF-8 would turn every Chinese character into U+FFFD.
    text = '<html><head><!-- <meta charset="utf-8"> old header --><meta charset="gbk"></head><p>论坛</p>'
    decoded = decode_html(text.encode("gb18030"), "text/html")
    assert (decoded.text, decoded.encoding, decoded.replaced) == (text, "gb18030", 0)
    # A comment left open hides what follows it within the scanned bytes too.
    open_comment = '<!-- <meta charset="utf-8"> <p>论坛</p>'.encode("gb18030")
    assert decode_html(open_comment, "text/html", default="gbk").encoding == "gb18030"


def test_gbk_bytes_declared_utf8_are_read_as_gbk_and_damaged_utf8_stays_utf8():
    # A GBK page whose template (or a server adding charset=utf-8 to every response) says UTF-8:
    # read as declared, every Chinese character became U+FFFD.
    text = '<meta charset="utf-8"><p>' + "基层党委办公室应强化的十种意识" * 20 + "</p>"
    for content_type in ("text/html", "text/html; charset=utf-8", "text/html; charset=gbk"):
        decoded = decode_html(text.encode("gb18030"), content_type)
        assert (decoded.text, decoded.encoding, decoded.replaced) == (text, "gb18030", 0), content_type
    # A Big5 site's default is tried before GB18030.
    big5 = '<meta charset="utf-8"><p>' + "論壇的帖子" * 20 + "</p>"
    assert decode_html(big5.encode("big5hkscs"), "text/html", default="big5").text == big5
    # UTF-8 with a damaged character is UTF-8 still: another codec would misread all of it.
    damaged = text.encode()[:200] + b"\xff" + text.encode()[200:]
    decoded = decode_html(damaged, "text/html")
    assert decoded.encoding == "utf-8" and decoded.text.count("基层党委") == 20


def test_a_utf8_page_with_some_posts_in_gbk_or_with_literal_replacement_characters_stays_utf8():
    # GB18030 reads almost any bytes without an error: a page mostly UTF-8 read as GB18030 would
    # turn every character into another one, with nothing counted as replaced.
    utf8_posts = "".join(f"<p>第{n}楼：基层党委办公室应强化的十种意识</p>" for n in range(20)).encode()
    gbk_posts = "".join(f"<p>第{n}楼：转贴的旧文</p>" for n in range(6)).encode("gb18030")
    decoded = decode_html(b'<meta charset="utf-8">' + utf8_posts + gbk_posts, "text/html")
    assert decoded.encoding == "utf-8" and decoded.text.count("十种意识") == 20
    # Strict UTF-8 holding many U+FFFD of its own is UTF-8.
    text = '<meta charset="utf-8"><p>' + "\ufffd" * 300 + "论坛</p>"
    assert decode_html(text.encode(), "text/html").text == text
