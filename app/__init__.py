"""The Gradio app: model loading (model.py), person detection (detection.py), photo reading (images.py),
per-session analysis (photo.py), what the photo tab's events compute (photo_events.py; photo_models.py for a
new photo and the model choice), plots (plots.py, lab_plots.py), the bias lab (lab.py), training results
(analysis.py) and the tabs' layout and wiring (ui.py, photo_tab.py).
"""
