"""Shared code of the microscopy ML notebook suite.

Sub-modules, one concern each (import the one you need; nothing runs at import time):

- ``helpers.env``       seeding, device choice, Colab detection
- ``helpers.data``      data manifest, download with checksum, cache, ``load(name)``
- ``helpers.simulate``  physics-based generators with known ground truth
- ``helpers.segment``   U-Net segmentation, atom and particle finding
- ``helpers.features``  patches, tracking, per-frame descriptors
- ``helpers.latents``   what a trained VAE's latents carry (KL per latent, active latents)
- ``helpers.spectra``   patch/loop pairs, loop area and errors for im2spec/spec2im
- ``helpers.transitions`` locating a phase transition from per-temperature statistics
- ``helpers.regions``   growing particle cores into regions, per-patch particle masks
- ``helpers.models``    VAE family (VAE, rVAE, jrVAE), im2spec/spec2im, DIVIDE
- ``helpers.plot``      figures
- ``helpers.widgets``   interactive explorers (ipywidgets)
- ``helpers.run``       the papermill runner (``python -m helpers.run``): seed sweeps on Dask,
                        summaries, the smoke baseline

Data flows one way: simulate/data -> segment -> features -> models -> plot.
"""

__version__ = "0.1.0"
