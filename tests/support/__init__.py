"""Helpers shared by test modules in several folders.

Test modules never import each other: a folder of tests is on sys.path only once pytest
collects a file there. tests/, the folder of tests/conftest.py, is always on it, so
`from support.fake_openai import FakeServer` works from any test module, run alone or not.
"""
