"""Hugging Face Spaces entry point for the debias-pose demo.

The Gradio app is not built yet (tracked as its own issue); until then this says so and exits.
"""

import sys

if __name__ == "__main__":
    sys.exit(
        "debias-pose: the Gradio app is not built yet. The library (pose/) works today: "
        "see README.md for the decoders and the tests."
    )
