"""What an ML statement that comes again costs (issue 15): as little as a plain one.

- known_settings: the session's sql_mode, character sets and database, kept between its
  ML statements while no command may have changed them;
- planning: a session's statements planned from the plan cache by shape
  (rewriter.shaped.plan_cache), prepared statements from their shape once;
- memo: the session's last statements by their exact bytes (their plans, and the whole
  rewrite of those answered from the cache);
- quick: small statements with cached answers served from the sockets' callbacks.

Each keeps the results exactly those of the general path (proxy.ml.path); the README's
"The fixed cost of an ML statement" says what each saves.
"""
