"""Training from the database: jobs that read the history, fit, validate and register model versions
(jobs), and the LambdaMART ranker's training set and fit (ranker_fit), and the taste arm's genre-taste fit (taste_fit)."""
