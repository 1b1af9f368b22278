"""debias-pose: top-down 2D pose estimation with the bias-compensated integral regression of
Gu, Yang and Yao, "Removing the Bias of Integral Pose Regression" (ICCV 2021).

Submodules: keypoints (schemas), geometry (crops and coordinate maps), targets (encode),
decode (argmax / integral / debiased), losses. Importing ``pose`` does no work beyond imports.
"""

__version__ = "0.1.0"
