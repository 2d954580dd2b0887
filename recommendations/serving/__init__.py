"""The request path: the engine and what it reads per request (context, candidates' inputs, the serving
state held in memory, the catalog arrays), and the background monitor of a web process."""
