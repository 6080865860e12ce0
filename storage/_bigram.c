/* storage._bigram: the bigram index's document of a text, at C speed.
 *
 * pair_document(text, ranges) returns each overlapping pair of characters of `text` whose two
 * characters both fall in one of `ranges` ((first, last) code points, inclusive), joined by
 * single spaces, in order: exactly what storage.bigram's Python version returns. The ranges
 * come from storage.bigram.BIGRAM_RANGES, the one definition of the set; this file holds none.
 *
 * Why C: the Python version makes a string object per pair, about a third of the search
 * index's cost on Chinese text (docs/benchmarks.md, section 2).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_RANGES 64

typedef struct {
    Py_UCS4 first;
    Py_UCS4 last;
} CodeRange;

/* Reads `ranges`, a sequence of (first, last) pairs; returns how many, or -1 with an error set. */
static Py_ssize_t
read_ranges(PyObject *ranges, CodeRange *out)
{
    PyObject *seq = PySequence_Fast(ranges, "ranges must be a sequence of (first, last) pairs");
    if (seq == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    if (count > MAX_RANGES) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d ranges", MAX_RANGES);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned long first, last;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "kk;a range is (first, last)", &first, &last)) {
            Py_DECREF(seq);
            return -1;
        }
        if (first > last || last > 0x10FFFF) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a range needs first <= last <= 0x10FFFF");
            return -1;
        }
        out[i].first = (Py_UCS4)first;
        out[i].last = (Py_UCS4)last;
    }
    Py_DECREF(seq);
    return count;
}

static inline int
in_ranges(Py_UCS4 ch, const CodeRange *ranges, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (ranges[i].first <= ch && ch <= ranges[i].last)
            return 1;
    }
    return 0;
}

/* The ranges of the last call, read once: callers pass the same tuple every time, and reading
 * it costs more than pairing a short post. Guarded by the GIL like any module state. */
static PyObject *last_ranges = NULL;
static CodeRange ranges[MAX_RANGES];
static Py_ssize_t range_count = 0;

static PyObject *
pair_document(PyObject *module, PyObject *args)
{
    PyObject *text, *ranges_arg;
    if (!PyArg_ParseTuple(args, "UO:pair_document", &text, &ranges_arg))
        return NULL;
    if (ranges_arg != last_ranges) {
        Py_CLEAR(last_ranges);
        range_count = read_ranges(ranges_arg, ranges);
        if (range_count < 0) {
            range_count = 0;
            return NULL;
        }
        /* A tuple cannot change after it is read; any other sequence is read on every call. */
        if (PyTuple_CheckExact(ranges_arg)) {
            Py_INCREF(ranges_arg);
            last_ranges = ranges_arg;
        }
    }

    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);

    /* First pass: how many pairs, and the widest character they hold (a str must be built
     * with exactly the width its widest character needs, or it compares unequal). */
    Py_ssize_t pairs = 0;
    Py_UCS4 widest = ' ';
    Py_UCS4 previous = 0;
    int previous_pairs = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        int pairs_up = in_ranges(ch, ranges, range_count);
        if (pairs_up && previous_pairs) {
            pairs++;
            widest = Py_MAX(widest, Py_MAX(previous, ch));
        }
        previous = ch;
        previous_pairs = pairs_up;
    }
    if (pairs == 0)
        return PyUnicode_New(0, 0);

    PyObject *document = PyUnicode_New(pairs * 3 - 1, widest);
    if (document == NULL)
        return NULL;
    int out_kind = PyUnicode_KIND(document);
    void *out = PyUnicode_DATA(document);
    Py_ssize_t at = 0;
    previous = 0;
    previous_pairs = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        int pairs_up = in_ranges(ch, ranges, range_count);
        if (pairs_up && previous_pairs) {
            if (at > 0)
                PyUnicode_WRITE(out_kind, out, at++, ' ');
            PyUnicode_WRITE(out_kind, out, at++, previous);
            PyUnicode_WRITE(out_kind, out, at++, ch);
        }
        previous = ch;
        previous_pairs = pairs_up;
    }
    return document;
}

static PyMethodDef methods[] = {
    {"pair_document", pair_document, METH_VARARGS,
     "pair_document(text, ranges) -> str: each overlapping pair of characters of text that both "
     "fall in ranges ((first, last) code points, inclusive), space-separated, in order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_bigram", "The bigram index's document of a text, at C speed.", -1, methods,
};

PyMODINIT_FUNC
PyInit__bigram(void)
{
    return PyModule_Create(&module_def);
}
