"""The classical digit engine's scikit-learn pipeline (HOG features -> PCA -> calibrated SVM, or
KNN), fitted by ``training.train_hog`` and by a handwriting sheet (``training.lib.sheet_profile``)."""

from __future__ import annotations

import numpy as np

from models.loading import hog_features


def build_pipeline(classifier: str, components: int, seed: int):
    """Scaler -> PCA -> SVM (or KNN) on HOG descriptors."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if classifier == "knn":
        head = KNeighborsClassifier(n_neighbors=5, weights="distance")
        return make_pipeline(StandardScaler(), PCA(components, random_state=seed), head)
    # one SVM on all the data; probabilities from sigmoid calibration on 3-fold held-out scores
    head = CalibratedClassifierCV(SVC(C=10, gamma="scale", random_state=seed), ensemble=False, cv=3)
    return make_pipeline(PCA(components, whiten=True, random_state=seed), head)


def fit(glyphs: np.ndarray, labels: np.ndarray, classifier: str = "svm", components: int = 80, seed: int = 1):
    """A fitted pipeline on (N, 28, 28) glyphs and their label strings."""
    feats = hog_features(glyphs)
    components = min(components, len(feats) - 1, feats.shape[1])
    return build_pipeline(classifier, components, seed).fit(feats, labels)
