"""Model names shared by the engine and its interfaces (importable without numba, so that
the CLI's options and the service's schema can list them)."""

#: Models built from the counts alone (:mod:`accum.classify`).
COUNT_MODELS = ("dm", "complement", "ridge-complement")
#: Models trained over the page vectors (:mod:`accum.linear`), kept by a fit.
TRAINED_MODELS = ("svm", "nbsvm")
#: Every model a user can name.
MODEL_NAMES = COUNT_MODELS + TRAINED_MODELS
