"""The local web page under `/.calmirror/`, served beside CalDAV by the local server.

`front` (the Host check, then the page or CalDAV), `app` (routes), `http` (requests,
sessions, CSRF), pages (`connection_page`, `calendars_page`, `week_page`, `outbox_page`),
their forms (`actions`, `feed_actions`), the week (`week`, `data`, `blocks`), and `feed`
(the busy-only ICS feed). Rendered by Jinja2 from `templates/`, no JavaScript.
"""
