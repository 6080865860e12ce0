"""The one compiled part: storage._bigram (the search index's bigram document at C speed).

Everything else is declared in pyproject.toml. The extension is optional: where no C compiler
is found the install still succeeds and storage.bigram uses its Python version, which gives
the same documents, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("storage._bigram", ["storage/_bigram.c"], optional=True)])
