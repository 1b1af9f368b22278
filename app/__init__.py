"""The Gradio app (model loading and detection, UI wiring, plots). Not built yet."""
