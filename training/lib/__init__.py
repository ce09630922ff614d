"""What the training steps share, as libraries that import no step (``tests/test_layout.py``).
The steps themselves are the modules directly under ``training/`` (``python -m training.<step>``);
the data they learn from is ``training.data``.

- ``loop``: the shared Keras training loop of the glyph classifiers (config, flags, resumable
  checkpoints under ``training/.checkpoints``, keep-best) and ``save_weights``/``publish``, which
  write a model with its ``meta.json`` and ONNX file;
- ``glyph_metrics``: a glyph model's figures (test accuracy, the "not sure" rule and what it flags,
  alphabet hints), for ``training.evaluate`` and the steps that train glyph models;
- ``keras_to_onnx``: ``export_onnx``, a Keras model written as ``model.onnx`` and checked against
  Keras (``training.export_onnx`` is the command that runs it on existing folders);
- ``hog_pipeline``: the classical engine's scikit-learn pipeline (HOG -> PCA -> SVM or KNN);
- ``fine_tuning``: training a served glyph model further (replay mix, fine-tune with weight-space
  ensembling), for retraining, a teach and a handwriting sheet;
- ``writer_classifier``: a profile's "yours / standard / other" classifier and its threshold;
- ``one_sample``: teaching a profile one sample of a character (variants, VAE, head, writer), the
  work of a ``training.teach`` job and of ``flask personal teach``;
- ``teach_pictures``: the PNG figures of such a teach;
- ``sheet_profile``: a profile from a whole handwriting sheet (personal HOG engine + fine-tuned CNN).
- ``folders``: a model folder swapped in place of the served one by renames (a teach, a sheet).
"""
