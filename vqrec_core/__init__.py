"""VQ-Rec Studio core: text -> code -> representation (Hou et al., WWW 2023), CPU-sized.

No Streamlit import anywhere in this package. The pipeline reads as the module list:
data -> text -> codes -> models -> train -> evaluate -> analysis, with store for the workspace.
"""

__version__ = "0.1.0"
