"""Factories for the recommendations app: a real (tiny) saved model behind every ModelVersion."""

from __future__ import annotations

import tempfile
from pathlib import Path

import factory
import pandas as pd

from recommendations.ml.popularity import PopularityRecommender
from recommendations.models import ModelKind, ModelVersion
from recommendations.services import model_version_register


def saved_popularity_model(item_ids=(10, 20, 30), heavy_item: int = 20) -> Path:
    """Fit and save a popularity model where `heavy_item` is watched by everyone."""
    rows = [(user, heavy_item, 5.0) for user in range(1, 6)]
    rows += [(1, item, 3.0) for item in item_ids if item != heavy_item]
    model = PopularityRecommender().fit(pd.DataFrame(rows, columns=["user_id", "content_id", "rating"]))
    return model.save(Path(tempfile.mkdtemp(prefix="reco-model-")) / "model")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """`ModelVersionFactory(heavy_item=30)` registers a candidate popularity model preferring title 30."""

    class Meta:
        model = ModelVersion

    @classmethod
    def _create(cls, model_class, *args, heavy_item: int = 20, **kwargs):
        version = model_version_register(
            kind=ModelKind.POPULARITY,
            saved_model_dir=saved_popularity_model(heavy_item=heavy_item),
            metrics=kwargs.pop("metrics", {"ndcg_at_10": 0.25}),
        )
        for name, value in kwargs.items():
            setattr(version, name, value)
        if kwargs:
            version.save()
        return version
