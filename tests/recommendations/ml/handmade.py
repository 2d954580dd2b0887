"""Hand-made data for the ML tests: two clear taste groups, and a catalog with one title nobody has watched."""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_SIZE = 10
ACTION_USERS = np.arange(100, 100 + GROUP_SIZE)
DRAMA_USERS = np.arange(200, 200 + GROUP_SIZE)
ACTION_TITLES = np.arange(1000, 1000 + GROUP_SIZE)
DRAMA_TITLES = np.arange(2000, 2000 + GROUP_SIZE)
NEW_ACTION_TITLE = 3000  # in the catalog, never watched


def taste_groups(*, dislikes: bool = False) -> pd.DataFrame:
    """Each user rates 8 of the 10 titles of their group 5 (and, with `dislikes`, 3 of the other group 1).

    The two titles of their own group a user has not seen are the obvious recommendations. Rating
    regression needs the dislikes to tell the groups apart; implicit-feedback models read any rating as a
    positive, so on 20 users the dislikes would blur the answer for them.
    """
    rows = []
    for users, own, other in ((ACTION_USERS, ACTION_TITLES, DRAMA_TITLES), (DRAMA_USERS, DRAMA_TITLES, ACTION_TITLES)):
        for position, user in enumerate(users):
            unseen = {position % GROUP_SIZE, (position + 1) % GROUP_SIZE}
            rows += [(user, title, 5.0) for index, title in enumerate(own) if index not in unseen]
            rows += [(user, other[(position + shift) % GROUP_SIZE], 1.0) for shift in (0, 3, 6) if dislikes]
    return pd.DataFrame(rows, columns=["user_id", "content_id", "rating"])


def unseen_own_titles(user_id: int) -> set[int]:
    """The two titles of the user's own group that taste_groups left out."""
    users, titles = (ACTION_USERS, ACTION_TITLES) if user_id in ACTION_USERS else (DRAMA_USERS, DRAMA_TITLES)
    position = int(np.flatnonzero(users == user_id)[0])
    return {int(titles[position % GROUP_SIZE]), int(titles[(position + 1) % GROUP_SIZE])}


def catalog() -> pd.DataFrame:
    """Every title with genres and cast; the new action title shares its group's metadata."""
    action = [["Action", "Thriller"], ["Ann", "Bob"]]
    drama = [["Drama", "Romance"], ["Cid", "Dee"]]
    rows = [(title, *action) for title in ACTION_TITLES] + [(title, *drama) for title in DRAMA_TITLES]
    rows.append((NEW_ACTION_TITLE, *action))
    return pd.DataFrame(rows, columns=["content_id", "genres", "cast"])
