"""The control API of a running lab: operations (ops.py), HTTP (api.py, server.py), the
web page (static/) and `fcsoft ctl` (cli.py). docs/control.md describes it."""
