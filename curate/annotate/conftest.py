collect_ignore = ["launcher.py"]  # runs inside the argilla-server venv (imports argilla_server)
