"""Factories for the experiments app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
import numpy as np
from django.utils import timezone

from experiments.models import Arm, BanditState, Experiment, ExperimentResult, ExplorationLog, Metric
from ranking.ml.bandit import CONTEXT_WIDTH, ITEM_WIDTH, LinUCBSoftmax, policy_to_bytes
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A running experiment that started an hour ago, without arms (`ArmFactory(experiment=...)` adds them)."""

    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"experiment-{n}")
    salt = factory.Sequence(lambda n: f"salt-{n}")
    status = Experiment.Status.RUNNING
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    ends_at = None


class ArmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Arm

    experiment = factory.SubFactory(ExperimentFactory)
    name = factory.Sequence(lambda n: f"arm-{n}")
    traffic_share = Decimal("0.5")
    is_baseline = False


class ExperimentResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExperimentResult

    arm = factory.SubFactory(ArmFactory)
    experiment = factory.LazyAttribute(lambda o: o.arm.experiment)
    metric = Metric.CTR
    value = 0.05
    ci_low = 0.04
    ci_high = 0.06
    n = 1000
    computed_at = factory.LazyFunction(timezone.now)


class BanditStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BanditState
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"bandit-{n}")
    policy_kind = LinUCBSoftmax.kind
    arrays = factory.LazyFunction(lambda: policy_to_bytes(LinUCBSoftmax()))
    version = 1


class ExplorationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExplorationLog

    request_id = factory.Sequence(lambda n: f"{n:032x}")
    title = factory.SubFactory(TitleFactory)
    profile = factory.SubFactory(ProfileFactory)
    bandit = "homepage"
    bandit_version = 0
    slot = 0
    position = 5
    propensity = 0.25
    candidate_count = 40
    context = factory.LazyFunction(lambda: np.zeros(CONTEXT_WIDTH, np.float32).tobytes())
    item_features = factory.LazyFunction(lambda: np.zeros(ITEM_WIDTH, np.float32).tobytes())
    created_at = factory.LazyFunction(timezone.now)
