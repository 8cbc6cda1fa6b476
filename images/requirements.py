"""Print the Python requirements an image installs, one per line (standard library only).

    python3 images/requirements.py pyproject.toml images/runtime

bereit's own dependencies (pyproject.toml), less the ones the image's `exclude.txt` names,
plus the image's `requirements.txt`. Used by the Dockerfiles and by bereit.cli.images.builder, so both
install the same list.
"""

import re
import sys
import tomllib
from pathlib import Path


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    stripped = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in stripped if line]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else requirement


def requirements(pyproject: Path, image_folder: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    excluded = {_name(line) for line in _lines(image_folder / "exclude.txt")}
    return [dep for dep in dependencies if _name(dep) not in excluded] + _lines(image_folder / "requirements.txt")


if __name__ == "__main__":
    print(*requirements(Path(sys.argv[1]), Path(sys.argv[2])), sep="\n")
