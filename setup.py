# For tooling that predates PEP 517; pip and bench build with flit from pyproject.toml.
import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "(.+?)"', Path("deploy_manager/__init__.py").read_text()).group(1)

setup(version=version, packages=find_packages(exclude=["tests*"]), include_package_data=True, zip_safe=False)
