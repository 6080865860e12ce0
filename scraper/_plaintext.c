/* scraper._plaintext: the text of a plain post body, at C speed.
 *
 * plain_layout(inner_html, jammer_min_units) takes the serialisation of a body's children and
 * returns its text, laid out and finished, exactly as scraper.clean.python_plain_layout does:
 *
 *   - None unless every "<" opens a "<br>" (escaped text and bare breaks only), and the
 *     string holds no NUL (the break mark) and no U+DFFF (the table cell mark);
 *   - the four escapes the serialiser writes in text (&lt; &gt; &nbsp; &amp;) read back;
 *   - HTML white space (\t \n \f \r) as spaces, and a line break at each <br> but a last one;
 *   - None when the text could hold a jammer run: `jammer_min_units` units in a row of
 *     Discuz's jammer alphabet once every character past U+00FF is left out (the pattern
 *     clean._SHORTEST_RUN_LATIN1; the Python side handles such bodies);
 *   - each line's white space (str.isspace) collapsed to single spaces and trimmed, runs of
 *     blank lines collapsed into one, blank lines at the edges dropped.
 *
 * cut_plainest_noise(inner_html, jammer_start, jammer_end, hidden_start, hidden_end) cuts
 * the plainest noise elements out of such a serialisation, exactly as
 * scraper.clean.python_cut_plainest_noise does: an element written with exactly one of the two
 * start tags, holding text only, closed by its end tag. It returns (what is left, jammer
 * elements cut, hidden elements cut), or None unless every other "<" opens a "<br>".
 *
 * Why C: these passes were about 33 us of a post's 100 us of extraction in Python, each a
 * whole-string pass over CJK text (docs/benchmarks.md, section 17). The Python versions stay
 * the definitions; tests/test_clean.py holds each pair equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BREAK_MARK 0x0000
#define TABLE_CELL_BREAK 0xDFFF

/* Jammer's alphabet (clean.JAMMER_UNIT): a unit is [\x20-\x3b\xa0][\x20\xa0][\x3f-\x7e]. */
static inline int unit_first(Py_UCS1 c) { return (c >= 0x20 && c <= 0x3b) || c == 0xa0; }
static inline int unit_space(Py_UCS1 c) { return c == 0x20 || c == 0xa0; }
static inline int unit_last(Py_UCS1 c) { return c >= 0x3f && c <= 0x7e; }

/* clean._SHORTEST_RUN_LATIN1 searched in `latin1`: a space and a last character (the first
 * unit without its first character), then min_units - 1 whole units. */
static int
holds_shortest_run(const Py_UCS1 *latin1, Py_ssize_t length, long min_units)
{
    Py_ssize_t span = 2 + 3 * (Py_ssize_t)(min_units - 1);
    for (Py_ssize_t at = 0; at + span <= length; at++) {
        if (!unit_space(latin1[at]) || !unit_last(latin1[at + 1]))
            continue;
        Py_ssize_t unit = at + 2;
        long matched = 0;
        while (matched < min_units - 1 && unit_first(latin1[unit]) && unit_space(latin1[unit + 1])
               && unit_last(latin1[unit + 2])) {
            unit += 3;
            matched++;
        }
        if (matched == min_units - 1)
            return 1;
    }
    return 0;
}

/* A str of the `length` characters of `chars` (of `kind`), at the width its widest character
 * needs: narrower than `kind` when the widest were left out. */
static PyObject *
str_of(int kind, const void *chars, Py_ssize_t length, Py_UCS4 widest)
{
    PyObject *result = PyUnicode_New(length, widest);
    if (result == NULL)
        return NULL;
    int result_kind = PyUnicode_KIND(result);
    void *result_data = PyUnicode_DATA(result);
    if (result_kind == kind) {
        memcpy(result_data, chars, (size_t)kind * (size_t)length);
    } else {
        for (Py_ssize_t i = 0; i < length; i++)
            PyUnicode_WRITE(result_kind, result_data, i, PyUnicode_READ(kind, chars, i));
    }
    return result;
}

/* str.isspace, answered without a call for the characters past U+3000 (most of CJK text):
 * no white space lies beyond it. */
static inline int
is_space(Py_UCS4 ch)
{
    return ch < 128 ? Py_UNICODE_ISSPACE(ch) : ch <= 0x3000 && Py_UNICODE_ISSPACE(ch);
}

/* The escape of text at `at` (its "&" included): the character it stands for and how many
 * characters it spans, or 0 when no escape starts there (the "&" is then text). */
#define READ_ESCAPE(CHAR_T)                                                                    \
    static inline Py_ssize_t read_escape_##CHAR_T(const CHAR_T *text, Py_ssize_t at,           \
                                                  Py_ssize_t length, Py_UCS4 *out)             \
    {                                                                                          \
        static const struct { const char *name; Py_ssize_t size; Py_UCS4 value; } escapes[] = \
            {{"&lt;", 4, '<'}, {"&gt;", 4, '>'}, {"&nbsp;", 6, 0xa0}, {"&amp;", 5, '&'}};       \
        for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++) {                      \
            Py_ssize_t size = escapes[e].size, i = 1;                                          \
            if (at + size > length)                                                            \
                continue;                                                                      \
            while (i < size && text[at + i] == (CHAR_T)escapes[e].name[i])                     \
                i++;                                                                           \
            if (i == size) {                                                                   \
                *out = escapes[e].value;                                                       \
                return size;                                                                   \
            }                                                                                  \
        }                                                                                      \
        return 0;                                                                              \
    }

/* The layout of `text` into `out` (as many characters as `text` at most, of the same width:
 * every character written is one of the text's or narrower), in one pass. Returns how many
 * characters it wrote and sets *widest to the widest, or returns -1: not plain, or a jammer
 * run possible. `latin1` is scratch space of the text's length: the text with HTML white
 * space as spaces and BREAK_MARK at each <br>, less every character past U+00FF.
 *
 * Lines (between breaks) have their white space collapsed and trimmed; between two lines
 * with text stand as many line feeds as breaks, at most two; none before the first line or
 * after the last (so a break at the end starts no line). */
#define LAYOUT(CHAR_T)                                                                         \
    READ_ESCAPE(CHAR_T)                                                                        \
    static Py_ssize_t layout_##CHAR_T(const CHAR_T *text, Py_ssize_t length, long min_units,   \
                                      Py_UCS1 *latin1, CHAR_T *out, Py_UCS4 *widest)           \
    {                                                                                          \
        Py_ssize_t written = 0, line_feeds = 0, latin1_length = 0;                             \
        int any_line = 0, in_space = 0, line_has_text = 0;                                     \
        Py_UCS4 wide = 0;                                                                      \
        for (Py_ssize_t i = 0; i < length; i++) {                                              \
            Py_UCS4 ch = text[i];                                                              \
            /* Past U+3000 (most of CJK text) stands no markup, escape or white space. */      \
            if (ch <= 0x3000) {                                                                \
                if (ch == '<') {                                                               \
                    if (i + 3 >= length || text[i + 1] != 'b' || text[i + 2] != 'r'            \
                        || text[i + 3] != '>')                                                 \
                        return -1;                                                             \
                    i += 3;                                                                    \
                    latin1[latin1_length++] = BREAK_MARK;                                      \
                    line_feeds += any_line;                                                    \
                    in_space = line_has_text = 0;                                              \
                    continue;                                                                  \
                }                                                                              \
                if (ch == BREAK_MARK)                                                          \
                    return -1;                                                                 \
                if (ch == '&') {                                                               \
                    Py_ssize_t size = read_escape_##CHAR_T(text, i, length, &ch);              \
                    if (size)                                                                  \
                        i += size - 1;                                                         \
                } else if (ch == '\t' || ch == '\n' || ch == '\f' || ch == '\r') {             \
                    ch = ' ';                                                                  \
                }                                                                              \
                if (ch <= 0xff)                                                                \
                    latin1[latin1_length++] = (Py_UCS1)ch;                                     \
                if (is_space(ch)) {                                                            \
                    in_space = line_has_text;                                                  \
                    continue;                                                                  \
                }                                                                              \
            } else if (ch == TABLE_CELL_BREAK) {                                               \
                return -1;                                                                     \
            }                                                                                  \
            if (!line_has_text) {                                                              \
                for (Py_ssize_t f = 0; f < line_feeds && f < 2; f++)                           \
                    out[written++] = '\n';                                                     \
                line_feeds = 0;                                                                \
                any_line = line_has_text = 1;                                                  \
            } else if (in_space) {                                                             \
                out[written++] = ' ';                                                          \
            }                                                                                  \
            in_space = 0;                                                                      \
            wide = ch > wide ? ch : wide;                                                      \
            out[written++] = (CHAR_T)ch;                                                       \
        }                                                                                      \
        if (holds_shortest_run(latin1, latin1_length, min_units))                              \
            return -1;                                                                         \
        /* Line feeds and spaces are below 128: they never widen a str past ASCII. */         \
        *widest = wide;                                                                        \
        return written;                                                                        \
    }

LAYOUT(Py_UCS1)
LAYOUT(Py_UCS2)
LAYOUT(Py_UCS4)

static PyObject *
plain_layout(PyObject *module, PyObject *args)
{
    PyObject *html;
    long min_units;
    if (!PyArg_ParseTuple(args, "Ul:plain_layout", &html, &min_units))
        return NULL;
    if (min_units < 1) {
        PyErr_SetString(PyExc_ValueError, "jammer_min_units must be at least 1");
        return NULL;
    }
    int kind = PyUnicode_KIND(html);
    const void *data = PyUnicode_DATA(html);
    Py_ssize_t length = PyUnicode_GET_LENGTH(html);

    void *out = PyMem_Malloc((size_t)kind * (size_t)(length + 1));
    Py_UCS1 *latin1 = PyMem_Malloc((size_t)(length + 1));
    PyObject *result = NULL;
    if (out == NULL || latin1 == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_UCS4 widest = 0;
    Py_ssize_t written;
    if (kind == PyUnicode_1BYTE_KIND)
        written = layout_Py_UCS1(data, length, min_units, latin1, out, &widest);
    else if (kind == PyUnicode_2BYTE_KIND)
        written = layout_Py_UCS2(data, length, min_units, latin1, out, &widest);
    else
        written = layout_Py_UCS4(data, length, min_units, latin1, out, &widest);
    if (written < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* Narrower than the text's when only white space needed the width (U+3000 in Latin-1). */
    result = str_of(kind, out, written, widest);
done:
    PyMem_Free(out);
    PyMem_Free(latin1);
    return result;
}

/* Whether `tag` (ASCII, `size` characters) is written in `text` at `at`. */
#define WRITTEN_AT(CHAR_T)                                                                     \
    static inline int written_at_##CHAR_T(const CHAR_T *text, Py_ssize_t length, Py_ssize_t at, \
                                          const char *tag, Py_ssize_t size)                    \
    {                                                                                          \
        if (at + size > length)                                                                \
            return 0;                                                                          \
        for (Py_ssize_t i = 0; i < size; i++) {                                                \
            if (text[at + i] != (CHAR_T)(unsigned char)tag[i])                                 \
                return 0;                                                                      \
        }                                                                                      \
        return 1;                                                                              \
    }

/* What is left of `text` once its plainest noise elements are cut, into `out` (as long as
 * `text`): returns its length and sets *widest, counting the cuts into *jammer and *hidden;
 * or returns -1 at a "<" that opens neither such an element nor a "<br>". An element is cut
 * where its start tag is written at a "<" and its end tag follows its text at once (the next
 * "<"); else that "<" is tried as the next kind, as the pattern's alternatives are. */
#define CUT(CHAR_T)                                                                            \
    WRITTEN_AT(CHAR_T)                                                                         \
    static inline Py_ssize_t element_end_##CHAR_T(const CHAR_T *text, Py_ssize_t length,       \
                                                  Py_ssize_t at, Py_ssize_t start_size,        \
                                                  const char *end, Py_ssize_t end_size)        \
    {                                                                                          \
        Py_ssize_t i = at + start_size;                                                        \
        while (i < length && text[i] != '<')                                                   \
            i++;                                                                               \
        return written_at_##CHAR_T(text, length, i, end, end_size) ? i + end_size : -1;        \
    }                                                                                          \
    static Py_ssize_t cut_##CHAR_T(const CHAR_T *text, Py_ssize_t length, const Tags *tags,    \
                                   CHAR_T *out, Py_UCS4 *widest, Py_ssize_t *jammer,           \
                                   Py_ssize_t *hidden)                                         \
    {                                                                                          \
        Py_ssize_t kept = 0;                                                                   \
        Py_UCS4 wide = 0;                                                                      \
        for (Py_ssize_t i = 0; i < length;) {                                                  \
            CHAR_T ch = text[i];                                                               \
            if (ch != '<') {                                                                   \
                wide = ch > wide ? ch : wide;                                                  \
                out[kept++] = ch;                                                              \
                i++;                                                                           \
                continue;                                                                      \
            }                                                                                  \
            Py_ssize_t end = -1;                                                               \
            if (written_at_##CHAR_T(text, length, i, tags->jammer_start, tags->jammer_start_size)) \
                end = element_end_##CHAR_T(text, length, i, tags->jammer_start_size,           \
                                           tags->jammer_end, tags->jammer_end_size);           \
            if (end >= 0) {                                                                    \
                ++*jammer;                                                                     \
            } else {                                                                           \
                if (written_at_##CHAR_T(text, length, i, tags->hidden_start,                   \
                                        tags->hidden_start_size))                              \
                    end = element_end_##CHAR_T(text, length, i, tags->hidden_start_size,       \
                                               tags->hidden_end, tags->hidden_end_size);       \
                if (end >= 0) {                                                                \
                    ++*hidden;                                                                 \
                } else if (written_at_##CHAR_T(text, length, i, "<br>", 4)) {                  \
                    memcpy(out + kept, text + i, 4 * sizeof(CHAR_T));                          \
                    kept += 4;                                                                 \
                    wide = wide > '>' ? wide : '>';                                            \
                    end = i + 4;                                                               \
                } else {                                                                       \
                    return -1;                                                                 \
                }                                                                              \
            }                                                                                  \
            i = end;                                                                           \
        }                                                                                      \
        *widest = wide;                                                                        \
        return kept;                                                                           \
    }

typedef struct {
    const char *jammer_start, *jammer_end, *hidden_start, *hidden_end;
    Py_ssize_t jammer_start_size, jammer_end_size, hidden_start_size, hidden_end_size;
} Tags;

CUT(Py_UCS1)
CUT(Py_UCS2)
CUT(Py_UCS4)

static PyObject *
cut_plainest_noise(PyObject *module, PyObject *args)
{
    PyObject *html;
    Tags tags;
    if (!PyArg_ParseTuple(args, "Us#s#s#s#:cut_plainest_noise", &html, &tags.jammer_start,
                          &tags.jammer_start_size, &tags.jammer_end, &tags.jammer_end_size, &tags.hidden_start,
                          &tags.hidden_start_size, &tags.hidden_end, &tags.hidden_end_size))
        return NULL;
    if (tags.jammer_start_size == 0 || tags.hidden_start_size == 0 || tags.jammer_end_size == 0
        || tags.hidden_end_size == 0) {
        PyErr_SetString(PyExc_ValueError, "the start and end tags must not be empty");
        return NULL;
    }
    int kind = PyUnicode_KIND(html);
    const void *data = PyUnicode_DATA(html);
    Py_ssize_t length = PyUnicode_GET_LENGTH(html);
    void *out = PyMem_Malloc((size_t)kind * (size_t)(length + 1));
    if (out == NULL)
        return PyErr_NoMemory();
    Py_UCS4 widest = 0;
    Py_ssize_t jammer = 0, hidden = 0, kept;
    if (kind == PyUnicode_1BYTE_KIND)
        kept = cut_Py_UCS1(data, length, &tags, out, &widest, &jammer, &hidden);
    else if (kind == PyUnicode_2BYTE_KIND)
        kept = cut_Py_UCS2(data, length, &tags, out, &widest, &jammer, &hidden);
    else
        kept = cut_Py_UCS4(data, length, &tags, out, &widest, &jammer, &hidden);
    PyObject *result;
    if (kept < 0) {
        result = Py_NewRef(Py_None); /* other markup: the element-by-element cut decides on it */
    } else {
        PyObject *left = str_of(kind, out, kept, widest);
        result = left == NULL ? NULL : Py_BuildValue("(Nnn)", left, jammer, hidden);
    }
    PyMem_Free(out);
    return result;
}

static PyMethodDef methods[] = {
    {"cut_plainest_noise", cut_plainest_noise, METH_VARARGS,
     "cut_plainest_noise(inner_html, jammer_start, jammer_end, hidden_start, hidden_end) -> "
     "(str, int, int) | None: the serialisation without its plainest noise elements, and how many of "
     "each were cut (see scraper.clean.python_cut_plainest_noise)."},
    {"plain_layout", plain_layout, METH_VARARGS,
     "plain_layout(inner_html, jammer_min_units) -> str | None: the finished text of escaped text "
     "and bare <br>, or None (see scraper.clean.python_plain_layout)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_plaintext", "The text of a plain post body, at C speed.", -1, methods,
};

PyMODINIT_FUNC
PyInit__plaintext(void)
{
    return PyModule_Create(&module_def);
}
