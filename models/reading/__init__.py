"""Reading what a user sent, one room per kind of answer: one glyph (``glyph``), a page or a
drawing of several glyphs (``page``), the lines of a paragraph (``lines``), with a person's
profile (``personal``); ``results`` holds the typed records every answer is made of."""
