"""Factories for the catalog app."""

from __future__ import annotations

import datetime as dt

import factory

from catalog.models import ALL_TIERS_MASK, Country, Credit, Genre, MaturityRating, Person, Title


class CountryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Country
        django_get_or_create = ("code",)

    code = factory.Iterator(["US", "GB", "BR", "DE", "FR", "IN", "JP", "MX"])
    name = factory.LazyAttribute(lambda o: f"Country {o.code}")


class GenreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Genre
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Genre {n}")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    external_id = factory.Sequence(lambda n: f"test-person:{n}")
    name = factory.Faker("name")


class TitleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Title
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"test-title:{n}")
    kind = Title.Kind.MOVIE
    name = factory.Faker("sentence", nb_words=3)
    synopsis = factory.Faker("paragraph")
    release_date = factory.Faker("date_between", start_date="-20y", end_date="-1y")
    date_added = factory.LazyFunction(lambda: dt.date.today() - dt.timedelta(days=30))
    duration_minutes = 100
    episode_count = 1
    maturity_rating = MaturityRating.AGE_13
    is_original = False
    available_tiers = ALL_TIERS_MASK

    @factory.post_generation
    def genres(self, create, extracted, **kwargs):
        if create and extracted:
            self.genres.add(*extracted)


class CreditFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credit

    title = factory.SubFactory(TitleFactory)
    person = factory.SubFactory(PersonFactory)
    role = Credit.Role.CAST
    billing_order = factory.Sequence(lambda n: n % 10)
