"""The compiled parts: storage._bigram (the search index's bigram document at C speed) and
scraper._plaintext (a plain post body's text at C speed).

Everything else is declared in pyproject.toml. The extensions are optional: where no C compiler
is found the install still succeeds and storage.bigram and scraper.clean use their Python
versions, which give the same results, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("storage._bigram", ["storage/_bigram.c"], optional=True),
    Extension("scraper._plaintext", ["scraper/_plaintext.c"], optional=True),
])
