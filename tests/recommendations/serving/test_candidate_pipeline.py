"""One pipeline: a profile's candidates from the engine's path (imported into the database, read as a request
reads it) and from the offline evaluation's path (the same data set's files) are the same titles, in order."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
from django.core.management import call_command

from catalog.models import Title
from recommendations.ml import candidate_pipeline
from recommendations.ml.evaluation import default_params
from recommendations.ml.evaluation_candidates import candidate_stage
from recommendations.models import ModelKind
from recommendations.serving import context
from recommendations.serving.candidate_inputs import candidates_generate
from recommendations.serving.context import profile_state_load
from recommendations.serving.state import AlignedModel, ServingModels, TrendingList
from tests.recommendations.ml.test_evaluation import write_tiny_ml100k
from users.ml.datasets import load_dataset
from users.models import Profile


def test_the_engine_and_the_evaluation_propose_the_same_candidates(db, tmp_path):
    directory = write_tiny_ml100k(tmp_path / "ml-100k", n_users=12, n_items=30)
    call_command("import_movielens", str(directory), verbosity=0)
    data = load_dataset(directory)
    stage, _ = candidate_stage(data, data.ratings, default_params(), threads=1)
    # The engine's view: title ids are database keys, profiles too; the models and catalog are the stage's,
    # with their ids turned into the database's, so that only the two ways of reading a profile differ.
    movie_of_title = {pk: int(ext.split(":")[1]) for pk, ext in Title.objects.values_list("pk", "external_id")}
    models = ServingModels(
        catalog=stage.catalog,
        models={
            ModelKind.MATRIX_FACTORIZATION: AlignedModel("v1", stage.models.mf.model, stage.models.mf.alignment),
            ModelKind.CONTENT: AlignedModel("v1", stage.models.content.model, stage.models.content.alignment),
            ModelKind.EASE: AlignedModel("v1", stage.models.ease.model, stage.models.ease.alignment),
        },
        mf_gram=None,
        popularity=stage.models.popularity,
        popular_rows=np.empty(0, np.int64),
        key=(),
    )
    trending = TrendingList(*stage.trending, from_store=True)
    now = dt.datetime.fromtimestamp(stage.now_seconds, tz=dt.UTC)
    assert context.HISTORY_LIMIT == candidate_pipeline.HISTORY_LIMIT

    compared = 0
    for profile in Profile.objects.select_related("account"):
        user = int(profile.account.external_id.split(":")[1])
        state = profile_state_load(profile_id=profile.pk)
        # The models know MovieLens ids: the request's history in those ids, the profile as its user.
        ids = np.array([movie_of_title[title] for title in state.history_title_ids.tolist()], np.int64)
        state = dataclasses.replace(state, profile_id=user, history_title_ids=ids)
        served = candidates_generate(state, models, trending, now=now)
        offline = stage.candidates(user)
        assert served.content_ids.tolist() == offline.content_ids.tolist(), user
        assert served.merged.sources == offline.merged.sources
        np.testing.assert_array_equal(served.merged.proposed, offline.merged.proposed)
        compared += 1
    assert compared == 12
