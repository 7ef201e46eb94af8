"""One Streamlit page script per file; ``dashboard/app.py`` registers them with ``st.navigation``."""
