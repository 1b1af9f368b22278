"""The Gradio app: model loading (model.py), person detection (detection.py), photo reading (images.py),
per-session analysis (photo.py), plots (plots.py, lab_plots.py), the bias lab (lab.py), training results
(analysis.py) and the UI wiring (ui.py, photo_tab.py).
"""
