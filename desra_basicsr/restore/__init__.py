"""DiffGAR: model-agnostic restoration of generative artifacts with a conditional image-to-image diffusion model.

Yin et al., "Model-Agnostic Restoration from Generative Artifacts Using Image-to-Image Diffusion Models": a U-Net
denoises the clean image (or its latent) given the image with artifacts, concatenated as a condition, and an
artifact-class embedding added to the timestep embedding. A ``[MASK]`` class, given to half of the training
samples, makes blind restoration possible, and classifier-free guidance between the true class and ``[MASK]``
trades fidelity for quality. Built on ``diffusers`` (its ``UNet2DModel``, ``DDPMScheduler`` and ``DDIMScheduler``):

* :mod:`.model`: the restorer (U-Net, optional autoencoder, training loss, tiled guided DDIM sampling);
* :mod:`.checkpoint`: its checkpoint file, marked with its kind so that other checkpoints are refused;
* :mod:`.tiling`: overlapping tiles blended with a smooth window (any image size, no seams);
* :mod:`.masking`: restoring only inside an artifact mask, feathered, every pixel outside unchanged.

See docs/restore.md.
"""
