"""Only what pyproject.toml cannot say: the benchmarks stay out of the wheel.

scripts/ is installed as `cliproxy.cli`, but scripts/bench.py is a developer's tool run from a
checkout (`python scripts/bench.py`), not part of the product.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

DEVELOPER_ONLY = {("cliproxy.cli", "bench"), ("cliproxy.cli", "bench_replicas")}


class BuildPy(build_py):
    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if (m[0], m[1]) not in DEVELOPER_ONLY]


setup(cmdclass={"build_py": BuildPy})
