"""Feedback: the yes/no and corrected labels people give on each answer.

The store (``feedback.store``: the SQLite file, or PostgreSQL when ``DATABASE_URL`` names one) is
always written first and is the source of truth; the Google Sheets copy (``feedback.google_sheets``)
follows in the background when configured; export (``feedback.export``) and retraining
(``training.retrain``) read the store. The rooms:

- ``feedback.wiring``: ``init_app`` opens the store and the sync for a Flask app (flaskr's ``db.py``
  pattern); views call ``store()`` and ``syncer()`` and never open connections;
- ``feedback.validation``: ``check_feedback`` checks one ``POST /feedback`` body (and writes nothing);
- ``feedback.recording``: answers (readings) become prediction rows, one transaction per answer, and
  ``record_feedback`` commits a checked ``POST /feedback`` body before it is acknowledged;
- ``feedback.cli``: ``flask feedback status | sync | export``;
- ``feedback.store``, ``feedback.export``, ``feedback.google_sheets``: the database, its export and
  the Google Sheets sink.
"""
