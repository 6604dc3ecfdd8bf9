"""The test broker's image recipe is found from the package, so a fresh machine can build it."""

from __future__ import annotations

from hub.testing import devbroker


def test_the_rabbitmq_image_build_script_is_found_where_the_repository_keeps_it() -> None:
    # A machine without the image builds it from this script; after the move of devbroker
    # into hub/testing/ the path pointed into hub/ and only machines that already had the
    # image could start a broker.
    assert devbroker.BUILD_SCRIPT.is_file()
    assert (devbroker.REPO_ROOT / "pyproject.toml").is_file()
