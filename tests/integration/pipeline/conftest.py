from __future__ import annotations

import pytest
from harness import make_pki

from hub.pki import PkiPaths


@pytest.fixture(scope="session")
def pipeline_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("pipeline-pki"))
