"""The repository as web pages: `tf2torch serve` (a local app with try-it) and `tf2torch site`
(the same pages as static files).

It sits at the packages layer and reads the repository through `tf2torch.packages`; it needs
the `[web]` extra (Starlette, Jinja2, uvicorn, python-multipart, markdown-it-py), which
nothing outside this folder imports. Modules: `catalog` (what is served, checked), `describe`
(a card in words), `pages` (templates), `uploads` (decoding what try-it receives), `runner`
(shared models, inference, results), `guards` (ASGI safety middleware), `app` (routes),
`server` (uvicorn), `site` (static files).
"""
