"""config.db.prepared: the profile head runs as a prepared statement on PostgreSQL, with the same answer."""

import pytest
from django.db import connection

from config.db import prepared
from recommendations.serving.context import HEAD_SQL, profile_head_load
from tests.factories.users import ProfileFactory

pytestmark = pytest.mark.django_db


def test_the_head_query_is_prepared_once_per_connection_and_answers_as_django_s_cursor():
    profile = ProfileFactory()
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(HEAD_SQL, [profile.pk])
        expected = cursor.fetchall()

    for _ in range(3):
        assert prepared.fetchall("default", HEAD_SQL, [profile.pk]) == expected
        head = profile_head_load(profile_id=profile.pk)

    assert head.profile_id == profile.pk and head.account_id == profile.account_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%users_viewingevent%"])
        assert cursor.fetchone()[0] == 1  # one statement, prepared once, reused
