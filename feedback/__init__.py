"""Feedback: the yes/no and corrected labels people give, kept in an embedded store first and
forwarded to Google Sheets when configured. The store, sink and sync arrive with issue 4; until then
the package holds no code."""
