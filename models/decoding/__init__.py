"""From a model's outputs to text: ranked candidates, look-alikes and alphabet hints
(``candidates``), CTC decoding (``ctc``) with the character language model (``charlm``), and
spelling correction with the answer's text as people write it (``spelling``)."""
