"""Finding what to read in a picture: the glyph boxes of a page (``page``) and the text lines of a
paragraph (``lines``)."""
