"""The image installs lambda/requirements-image.lock: it must pin what lambda/requirements.txt pins."""
from pathlib import Path

from stacks.image_deps import BASE_IMAGE_PACKAGES, normalise

LAMBDA = Path(__file__).resolve().parents[2] / "lambda"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalise(name.split("[", 1)[0])] = version
    return pins


def test_lock_pins_every_direct_runtime_dependency_at_its_version():
    direct = _pins(LAMBDA / "requirements.txt")
    locked = _pins(LAMBDA / "requirements-image.lock")
    expected = {name: version for name, version in direct.items() if name not in BASE_IMAGE_PACKAGES}
    assert {name: locked.get(name) for name in expected} == expected, "run `make lock`"
    assert not BASE_IMAGE_PACKAGES & locked.keys()
    assert all(locked.values()), "every line of the lock is pinned with =="
