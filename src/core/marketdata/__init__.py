"""Market data: candles, 24h stats, reference prices, valuations and tickers."""
