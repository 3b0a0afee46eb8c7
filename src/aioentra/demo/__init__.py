"""The ToDo sample: a daemon that drives a protected ToDo API, as Microsoft's External ID
tutorial "call your own API from a .NET daemon" does, in Python.

* :mod:`aioentra.demo.todo_api`: the ToDo API on aiohttp.web. It admits tokens that
  :func:`~aioentra.aiohttp.web.token_validation` accepts, and checks the caller's app roles:
  ``ToDoList.Read.All`` (or ``ToDoList.ReadWrite.All``) to read, ``ToDoList.ReadWrite.All``
  to write.
* :mod:`aioentra.demo.todo_daemon`: the daemon. It gets an app token with a
  :class:`~aioentra.TokenProvider` configured from ``appsettings.json`` (its certificate can
  live in Key Vault) and posts, lists, edits and deletes to-dos through
  :func:`~aioentra.aiohttp.authenticated_session`.

Both read ``appsettings.json`` files shaped like the tutorial's ``ToDoListAPI`` and
``ToDoListClient`` ones, so pointing them at a real tenant is a configuration change
(``examples/todo/``). ``aioentra demo`` runs both against the embedded emulator, offline.
"""
