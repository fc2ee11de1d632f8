"""The lab engine: what a notebook's ``lab`` is made of, knowing no lesson by name.

A lab server (uvicorn on 127.0.0.1, port 0) runs a lesson's app; learner functions run
under a guard with a deadline; a SQLite store keeps the lab's data and audit; flags, TLS
certificates and the grader's report live here too. Lessons import the engine; the engine
imports no lesson and no course tool.
"""
