"""The course tools: what instructors (and learners, for their progress) run.

Making the learner notebooks from the solutions (authoring), a learner release, grading a
cohort (restore, nbrun, cohort), the progress file, and the ``labapp`` command (cli). They
use the engine and the lesson catalogue, never a lesson's internals.
"""
