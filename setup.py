"""The one compiled part: the sampler's high-rate fast path (sandbox/sampler/_ticker.c).
Optional: without a C compiler or Python's headers the package installs without it and the
sampler uses its Python fast path (sandbox.sampler.ticker.AVAILABLE says which)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("sandbox.sampler._ticker", ["sandbox/sampler/_ticker.c"],
                             optional=True)])
