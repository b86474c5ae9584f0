"""Pictures and the HTML report: the layout rendered by KLayout's own renderer (render.py), the
layer styles of the shipped .lyp files (layerstyle.py), block reuse read from the layout
(reuse.py), matplotlib figures (plots.py) and one self-contained HTML page (html.py)."""
