"""The modelling core: dataset-agnostic, it takes a feature frame plus a
:class:`~cmerisk.spec.DatasetSpec`.

``splits`` (temporal or by id) -> ``baselines`` and ``train`` (LightGBM) ->
``calibrate`` -> ``evaluate`` (``metrics`` with bootstrap CIs) -> ``gates`` ->
``bundle`` (the saved model everyone else loads). ``matrix`` makes the model's
input table from a frame and ``reference`` keeps the training distribution
(medians for explanations, PSI bins for drift).

Submodules are imported explicitly (``from cmerisk.model.bundle import
load_bundle``) so that importing the package stays cheap.
"""
