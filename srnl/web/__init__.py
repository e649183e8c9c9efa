"""`srnl serve`: the restoration of `srnl upscale`/`srnl denoise` in a local web page, and the HTTP
API the page uses. Needs the `web` extra (FastAPI, uvicorn, python-multipart)."""
