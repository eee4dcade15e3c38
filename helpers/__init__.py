"""Shared code of the microscopy ML notebook suite.

Sub-modules, one concern each, in layers (a module imports only from its own layer or from
layers to its left; ``CONTRIBUTING.md`` draws the map and ``tests/test_layering.py`` checks it).
Import the one you need; nothing runs at import time.

- ``helpers.env``       seeding, device choice, Colab detection
- ``helpers.simulate``  physics-based generators with known ground truth
- ``helpers.data``      data manifest, download with checksum, cache, ``load(name)``
- ``helpers.segment``   atom and particle finding
- ``helpers.features``  patches, tracking, per-frame descriptors
- ``helpers.analysis``  latent activity, transitions, regions, spectra pairs, circular
                        statistics, and ``scores`` against ground truth
- ``helpers.models``    every trained estimator on one base: VAE family (VAE, rVAE, jrVAE),
                        U-Net, im2spec/spec2im, DIVIDE
- ``helpers.plot``      figures
- ``helpers.widgets``   interactive explorers (ipywidgets)
- ``helpers.run``       the papermill runner (``python -m helpers.run``): seed sweeps on Dask,
                        summaries, the smoke baseline
- ``helpers.teach``     the teaching edition of the notebooks

env <- simulate <- data <- segment, features <- analysis <- models <- plot <- widgets, run, teach
"""

__version__ = "0.1.0"
