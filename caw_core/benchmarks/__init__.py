"""Measurement harness for ``caw-core bench``, kept out of the library proper.

``bench``: the jobs, timing and memory measurement, and the report; ``naive``: caw's loss formulas computed in
the reference repositories' habits; ``reference``: the PMG-AFT and TGA-ZSR repositories' own training steps,
ported to open_clip. Nothing in caw_core outside ``commands/bench.py`` imports this package.
"""
