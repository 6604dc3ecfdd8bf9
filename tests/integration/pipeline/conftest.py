from __future__ import annotations

import pytest

from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import make_pki


@pytest.fixture(scope="session")
def pipeline_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("pipeline-pki"))
