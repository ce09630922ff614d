"""Spelling correction of line readings (models/decoding/spelling.py): candidates weighed by the
writing, case, punctuation and names kept, every change listed, and answers tidied as people write."""

from __future__ import annotations

import numpy as np

from models.decoding.ctc import alignment, text_log_likelihood
from models.decoding.spelling import Speller, looks_like_name, tidy_text


def test_spelling_correction_weighs_candidates_by_the_writing():
    """Read "anty": without the columns the likeliest English word is "any"; the columns say the
    first letter might be a d and the second a u, and nothing there is a blank between n and y."""

    charset = " adntuy"

    def column(**weights):
        p = np.full(len(charset) + 1, 0.002)
        for ch, w in weights.items():
            p[len(charset) if ch == "blank" else charset.index(ch)] = w
        return p / p.sum()

    probs = np.array(
        [
            column(a=0.55, d=0.45),
            column(blank=1.0),
            column(n=0.55, u=0.45),
            column(blank=1.0),
            column(t=1.0),
            column(blank=1.0),
            column(y=1.0),
        ]
    )
    speller = Speller.english()
    assert speller.line("anty") == "any"
    assert speller.line("anty", probs, charset) == "duty"
    assert text_log_likelihood(probs, "duty", charset) > text_log_likelihood(probs, "any", charset)
    assert alignment(probs, "anty", charset) == [0, 2, 4, 6]
    assert alignment(probs, "anty anty", charset) is None  # more letters than columns
    assert speller.line("anty anty", probs, charset) == "any any"  # then the words alone decide


def test_spelling_correction_keeps_case_and_punctuation():
    speller = Speller.english()
    assert speller.line("The quikc brown fox, Mr. Gaitskell said.") == "The quick brown fox, Mr. Gaitskell said."
    assert Speller(["Gaitskell", "Labour"]).line("Gaitskel and Labuor") == "Gaitskell and Labour"


def test_answers_have_no_space_before_punctuation():
    assert tidy_text("Vang lieng ,the pro-") == "Vang lieng, the pro-"
    assert tidy_text("Plain of Jars ,howeve-,") == "Plain of Jars, howeve-,"
    assert tidy_text("don 't go .Then he said :yes !") == "don't go. Then he said: yes!"
    assert tidy_text('communists " former') == 'communists " former'  # quotes as written
    assert tidy_text("e.g. 3.5 and 1,000 - well") == "e.g. 3.5 and 1,000 - well"


def test_names_are_kept_and_every_change_is_listed():
    speller = Speller.english()
    text, changes = speller.correct("The quikc brown fox met KYLLIAN and Gaetan in Penh.")
    assert text == "The quick brown fox met KYLLIAN and Gaetan in Penh."  # names are not dictionary words
    assert changes == [{"raw": "quikc", "corrected": "quick", "word": 1}]
    assert looks_like_name("He met Norman.", 7, "Norman") and not looks_like_name("Norman met him.", 0, "Norman")
    assert looks_like_name("a TRIGUEL", 2, "TRIGUEL") and not looks_like_name("so. The", 4, "The")


def test_an_answer_says_where_each_correction_stands_in_its_text():
    """The answer's text is tidied after correction (spaces move); each change still points at its
    word there, also after a correction that adds an apostrophe (one word read, two letter runs)."""
    text, changes = Speller(["don't", "know", "then"]).answer("I dont knwo ,thne")
    assert text == "I don't know, then"
    assert [(c["raw"], c["word"]) for c in changes] == [("dont", 1), ("knwo", 2), ("thne", 3)]
    assert [text[c["start"] : c["end"]] for c in changes] == ["don't", "know", "then"]
    assert [c["start"] for c in changes] == [2, 8, 14]


def test_correct_lists_its_changes_without_their_place():
    text, changes = Speller.english().correct(" Vang lieng ,teh")
    assert text == " Vang lien ,the" and changes == [
        {"raw": "lieng", "corrected": "lien", "word": 1},
        {"raw": "teh", "corrected": "the", "word": 2},
    ]
