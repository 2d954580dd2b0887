"""Column names and shared constants of the recommendation library (one place, no scattered literals)."""

from __future__ import annotations

USER_COL = "user_id"
ITEM_COL = "content_id"
RATING_COL = "rating"
INTERACTION_COLUMNS = (USER_COL, ITEM_COL, RATING_COL)

# Content feature columns of the catalog frame handed to ContentSimilarity, with their default TF-IDF weights.
CONTENT_FIELDS = {"genres": 1.0, "cast": 1.0, "directors": 1.0, "keywords": 0.5}

# recommend_many pads rows that have fewer than n unseen items with this id and a score of -inf.
PAD_ID = -1

# Bumped when the on-disk layout of a saved model changes; load refuses other versions.
ARTIFACT_FORMAT = 1
