"""Fixtures of the knowledge-base tests: one embedding model and one sample KB per session.

Everything runs against real Qdrant local mode in temporary folders; only the embeddings HTTP
API is faked (in test_kb_retrieval.py), never the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kb_helpers import ingest

from botcore.kb.embeddings import LocalE5Embedder
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kb"


@pytest.fixture(scope="session")
def kb_resources() -> Iterator[KBResources]:
    """Shared clients, one loaded embedding model and one jieba dictionary."""
    resources = KBResources()
    resources.embedders[KBSettings().embedding.model_dump_json()] = LocalE5Embedder()
    yield resources
    resources.close()


@pytest.fixture
def kb_settings(tmp_path: Path) -> KBSettings:
    """Settings with a fresh local-mode folder."""
    return KBSettings(data_path=tmp_path / "qdrant")


@pytest.fixture(scope="session")
def sample_kb(
    kb_resources: KBResources, tmp_path_factory: pytest.TempPathFactory
) -> KBSettings:
    """The bundled sample knowledge base, ingested once as kb 'sample', tenant 'default'."""
    settings = KBSettings(data_path=tmp_path_factory.mktemp("sample") / "qdrant")
    report = ingest(settings, kb_resources, [SAMPLE / "docs"], kb="sample", tenant="default")
    assert report.ok, report.failed
    return settings
