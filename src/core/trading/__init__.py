"""Trading: the pure matching core of a pair (`engine`), its vocabulary (`commands`) and
book presentation helpers (`book`)."""
